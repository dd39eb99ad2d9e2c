import NIOCore
import NIOHTTP1

/// Answers `Expect: 100-continue` (RFC 9110 §10.1.1) with `100 Continue` as the request head arrives, so a
/// client that waits for it before sending its body — curl does for bodies over 1 MiB — sends it at once
/// instead of after its own timeout (a second, for curl). The expectation is then met: the head goes on
/// without it. An HTTP/1.0 request's expectation is ignored, as the RFC says.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), head.version.major > 1 || head.version.minor >= 1,
            head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
        else {
            context.fireChannelRead(data)
            return
        }
        head.headers.remove(name: "expect")
        context.writeAndFlush(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }
}
