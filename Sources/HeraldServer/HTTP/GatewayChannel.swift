import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The gateway's connections: HTTP/1 served by Hummingbird, and on `/v1/ws` an upgrade to a WebSocket that
/// is served on the event loop by a ``WebSocketConnectionHandler`` (no task per connection or per message).
/// NIO upgrades only a connection's first request: a later `/v1/ws` upgrade request on a kept-alive
/// connection reaches the API's `GET /v1/ws`, which answers 426 (or the reason it would have been refused).
///
/// A ``WebSocketUpgradeGate`` sits in front of the upgrade, so that a refused upgrade gets its status (401,
/// 400, 403, 503, PROTOCOL.md §9) and error body rather than NIO's bare 400.
struct GatewayChannel: ServerChildChannel, HTTPChannelHandler {
    /// What a connection turned into after its first request.
    enum Upgrade: Sendable {
        /// A WebSocket, served by its handler on the event loop from now on.
        case webSocket
        /// HTTP requests, served by Hummingbird.
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgrade: EventLoopFuture<Upgrade>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let http1: HTTP1Channel.Configuration
    /// The largest WebSocket frame a client may send.
    let maxFrame: Int
    /// The checks of an upgrade request: what it asks for and who asks, or why it is refused.
    let check: @Sendable (URI, HTTPHeaders) throws(APIError) -> HTTPGateway.WebSocketRequest
    /// The handler that serves an accepted WebSocket.
    let serve: @Sendable (HTTPGateway.WebSocketRequest) -> WebSocketConnectionHandler
    /// The configured tokens, whose names label the upgrades in the HTTP metrics.
    let tokens: [HeraldConfiguration.Token]

    init(
        responder: @escaping HTTPChannelHandler.Responder,
        http1: HTTP1Channel.Configuration,
        maxFrame: Int,
        tokens: [HeraldConfiguration.Token],
        check: @escaping @Sendable (URI, HTTPHeaders) throws(APIError) -> HTTPGateway.WebSocketRequest,
        serve: @escaping @Sendable (HTTPGateway.WebSocketRequest) -> WebSocketConnectionHandler
    ) {
        self.responder = responder
        self.http1 = http1
        self.maxFrame = maxFrame
        self.tokens = tokens
        self.check = check
        self.serve = serve
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let check = self.check
            let serve = self.serve
            let tokens = self.tokens
            let upgrader = NIOTypedWebSocketServerUpgrader<Upgrade>(
                maxFrameSize: maxFrame,
                enableAutomaticErrorHandling: false,
                shouldUpgrade: { channel, head in
                    // The gate has checked the request and refused what fails; only `/v1/ws` upgrades (the
                    // gate strips `Upgrade` elsewhere).
                    guard URI(head.uri).path == "/v1/ws" else { return channel.eventLoop.makeSucceededFuture(nil) }
                    return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        // Checked again where the socket starts: the broker may have begun shutting down.
                        guard let request = try? check(URI(head.uri), head.headers) else {
                            channel.close(promise: nil)
                            return .webSocket
                        }
                        try channel.pipeline.syncOperations.addHandler(serve(request))
                        return .webSocket
                    }
                }
            )
            let http1 = self.http1
            let upgrades = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler())
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandlers(http1.additionalChannelHandlers())
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger)
                        )
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
                        return .notUpgraded(asyncChannel)
                    }
                }
            )
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Upgrade>(upgradeConfiguration: upgrades)
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            let upgrade = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(
                configuration: configuration)
            let decoder = try channel.pipeline.syncOperations.handler(
                type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(
                WebSocketUpgradeGate(
                    check: { uri, headers throws(APIError) in _ = try check(uri, headers) },
                    answered: { head, status, started in
                        let queryToken = URI(head.uri).queryParameters["token"].map(String.init)
                        RequestMetrics.record(
                            method: head.method.rawValue, route: "/v1/ws", status: status,
                            token: RequestMetrics.tokenLabel(
                                authorization: head.headers.first(name: "authorization"), queryToken: queryToken,
                                tokens: tokens),
                            since: started)
                    }),
                position: .after(decoder))
            return Value(upgrade: upgrade, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgrade.get() {
            case .webSocket:
                // Served by its handler on the event loop; the connection task ends here.
                return
            case .notUpgraded(let http1):
                await handleHTTP(asyncChannel: http1, logger: logger)
            }
        } catch {
            logger.debug("gateway connection ended", metadata: ["error": "\(error)"])
        }
    }
}
