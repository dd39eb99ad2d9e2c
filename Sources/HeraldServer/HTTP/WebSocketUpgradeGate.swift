import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// Sits between the HTTP decoder and the upgrade handler for a connection's first request: an upgrade
/// request for `/v1/ws` that fails its checks is answered here with the API's error and the connection
/// closed; anything else passes, and the gate leaves the pipeline.
final class WebSocketUpgradeGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let check: @Sendable (URI, String?) throws(APIError) -> Void
    private var refusing = false

    init(check: @escaping @Sendable (URI, String?) throws(APIError) -> Void) {
        self.check = check
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        guard case .head(let head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        let uri = URI(head.uri)
        if uri.path == "/v1/ws", head.headers["upgrade"].contains(where: { $0.lowercased() == "websocket" }) {
            do throws(APIError) {
                try check(uri, head.headers.first(name: "authorization"))
            } catch {
                refuse(error, context: context)
                return
            }
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(_ error: APIError, context: ChannelHandlerContext) {
        refusing = true
        let body = JSONResponse.errorBody(error)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        let status = HTTPResponseStatus(statusCode: Int(error.status.code))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
