import Dispatch
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// Sits between the HTTP decoder and the upgrade handler for a connection's first request: an upgrade
/// request for `/v1/ws` that fails its checks (or lacks the WebSocket headers) is answered here with the
/// API's error and the connection closed; an upgrade request for another path loses its `Upgrade` header
/// and is served as HTTP; anything else passes. Then the gate leaves the pipeline.
///
/// Until then it also guards what comes before a first request: bytes that are not HTTP/1.1 get a 400 (a
/// header section over NIO's limit a 431) with an error body, and a connection whose first request head has
/// not arrived within ``firstRequestTimeout`` is closed — an idle or trickling connection is not held forever
/// (after the first request, Hummingbird's idle timeout does that).
final class WebSocketUpgradeGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// How long a new connection may take to send its first request's head.
    static let firstRequestTimeout = TimeAmount.seconds(30)

    private let check: @Sendable (URI, HTTPHeaders) throws(APIError) -> Void
    /// Told how each `/v1/ws` upgrade request was answered: its head, its status (101 when it goes on to the
    /// upgrade, which ``checkHandshake(_:)`` makes sure NIO then makes), and when its head arrived (`DispatchTime` nanoseconds), for the HTTP metrics.
    private let answered: @Sendable (HTTPRequestHead, Int, UInt64) -> Void
    private let timeout: TimeAmount
    private var refusing = false
    private var deadline: Scheduled<Void>?

    init(
        timeout: TimeAmount = firstRequestTimeout,
        check: @escaping @Sendable (URI, HTTPHeaders) throws(APIError) -> Void,
        answered: @escaping @Sendable (HTTPRequestHead, Int, UInt64) -> Void = { _, _, _ in }
    ) {
        self.timeout = timeout
        self.check = check
        self.answered = answered
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    /// A request NIO's decoder cannot read: answered, and the connection closed (what follows cannot be
    /// framed).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError, !refusing else {
            context.fireErrorCaught(error)
            return
        }
        deadline?.cancel()
        if case .headerOverflow = parse {
            refuse(
                APIError(.init(code: 431), "too_large", "request: the header section is larger than the broker reads"),
                context: context)
        } else {
            refuse(.invalidRequest("request: not a valid HTTP/1.1 request (\(parse))"), context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing else { return }
        guard case .head(let head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        deadline?.cancel()
        let uri = URI(head.uri)
        guard head.headers.contains(name: "upgrade") else {
            // HTTP/1.0 closes after its response unless it asks to keep the connection (RFC 9112 §9.3): said
            // to the server behind as `Connection: close`.
            if head.version == .http1_0, !head.headers[canonicalForm: "connection"].contains("keep-alive") {
                var closing = head
                closing.headers.replaceOrAdd(name: "connection", value: "close")
                return pass(wrapInboundOut(.head(closing)), context: context)
            }
            return pass(data, context: context)
        }
        guard uri.path == "/v1/ws" else {
            // Only /v1/ws upgrades: elsewhere the request is served as HTTP, its Upgrade ignored (NIO would
            // otherwise try the upgrade, fail it, and end the connection).
            var plain = head
            plain.headers.remove(name: "upgrade")
            return pass(wrapInboundOut(.head(plain)), context: context)
        }
        let started = DispatchTime.now().uptimeNanoseconds
        do throws(APIError) {
            try Self.checkHandshake(head)
            try check(uri, head.headers)
        } catch {
            answered(head, Int(error.status.code), started)
            refuse(error, context: context)
            return
        }
        answered(head, 101, started)
        pass(data, context: context)
    }

    /// What a WebSocket handshake needs (RFC 6455 §4.2.1), said here with an error body: a request that
    /// passes is one NIO's upgrader upgrades, which is why the gate counts it as 101. Without these checks,
    /// two keys and `Upgrade: h2c` on `/v1/ws` got the connection closed with no answer at all (seen with
    /// this NIO), and a request without `Connection: Upgrade`, which NIO does not check, was upgraded.
    static func checkHandshake(_ head: HTTPRequestHead) throws(APIError) {
        guard head.method == .GET else {
            throw APIError(.methodNotAllowed, "invalid_request", "\(head.method) /v1/ws: a WebSocket upgrade is a GET")
        }
        guard head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) else {
            throw APIError(.upgradeRequired, "invalid_request", "Upgrade: /v1/ws upgrades to websocket only")
        }
        guard head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            throw APIError(.badRequest, "invalid_request", "Connection: must include Upgrade (RFC 6455 §4.1)")
        }
        let keys = head.headers[canonicalForm: "sec-websocket-key"]
        guard let key = keys.first else {
            throw APIError(.badRequest, "invalid_request", "Sec-WebSocket-Key: missing")
        }
        guard keys.count == 1, Self.isNonce(String(key)) else {
            throw APIError(
                .badRequest, "invalid_request",
                "Sec-WebSocket-Key: must be one key of 16 bytes in base64 (RFC 6455 §4.1)")
        }
        guard head.headers[canonicalForm: "sec-websocket-version"] == ["13"] else {
            throw APIError(.upgradeRequired, "invalid_request", "Sec-WebSocket-Version: must be 13")
        }
    }

    /// Whether `key` is 16 bytes in base64: 22 characters of the base64 alphabet, then `==`.
    static func isNonce(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[..<22].allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+")
                || byte == UInt8(ascii: "/")
        }
    }

    /// Lets the request through and leaves the pipeline.
    private func pass(_ data: NIOAny, context: ChannelHandlerContext) {
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
        // RFC 9110 §15.5.22: the protocol to upgrade to; RFC 6455 §4.4: the version the broker speaks.
        if error.status == .upgradeRequired {
            headers.add(name: "Upgrade", value: "websocket")
            headers.add(name: "Sec-WebSocket-Version", value: "13")
        }
        let status = HTTPResponseStatus(statusCode: Int(error.status.code))
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
