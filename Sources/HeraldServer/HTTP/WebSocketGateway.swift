import DequeModule
import HTTPTypes
import HeraldCore
import HeraldProtocol
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// `GET /v1/ws?topics=P1,P2&buffer=N` (PROTOCOL.md §7): each text message is one JSON object, exactly the
/// frames of the IPC socket without their length prefix. The socket speaks through an ``IPCSession`` that
/// needs no `hello` (the upgrade authenticated it): `subscribe`, `unsubscribe`, `publish`, `ping`, `stats`
/// and `subscribers` work as in §2.2, a malformed message gets an `error` and the socket stays. The query's
/// `topics` are one live subscription (`drop_newest`, `buffer` default 100), announced by
/// `{"op":"ok","subscription":n}` before its first event. Statistics are kept under `ws:<token name>` or
/// `ws:anonymous`; a WebSocket is not a module (no `module.loaded`). Liveness is WebSocket ping frames every
/// `ipc.heartbeat_ms`, which browsers answer on their own.
extension HTTPGateway {
    /// What the upgrade request asks for.
    struct WebSocketRequest {
        let topics: [TopicPattern]
        let buffer: Int
    }

    /// Reads and checks the upgrade request: the patterns are valid and covered by the token, `buffer` is in
    /// range, the broker is not shutting down.
    func webSocketRequest(_ uri: URI, token: HeraldConfiguration.Token?) throws(APIError) -> WebSocketRequest {
        let query = uri.queryParameters
        var topics: [TopicPattern] = []
        if let text = query["topics"], !text.isEmpty {
            for (index, part) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                do {
                    topics.append(try TopicPattern(String(part)))
                } catch {
                    throw APIError(.badRequest, "invalid_topic", "topics[\(index)]: \(error)")
                }
            }
        }
        var buffer = 100
        if let text = query["buffer"] {
            guard let number = Int(text), EventBus.bufferRange.contains(number) else {
                throw .invalidRequest(
                    "buffer: must be \(EventBus.bufferRange.lowerBound) to \(EventBus.bufferRange.upperBound)")
            }
            buffer = number
        }
        if broker.isShuttingDown { throw APIError(.serviceUnavailable, "shutting_down", "the broker is shutting down") }
        do throws(ProtocolError) {
            try broker.checkSubscribe(topics, from: Principal(name: "ws", permissions: token))
        } catch {
            throw APIError(error)
        }
        return WebSocketRequest(topics: topics, buffer: buffer)
    }

    /// The checks of an upgrade request, as ``WebSocketUpgradeGate`` runs them before the upgrade: the
    /// token when tokens are configured (401), then ``webSocketRequest(_:token:)``.
    func checkUpgrade(_ uri: URI, authorization: String?) throws(APIError) -> WebSocketRequest {
        let tokens = broker.configuration.tokens
        let token =
            tokens.isEmpty
            ? nil
            : try BearerAuthentication.authenticate(
                authorization: authorization, queryToken: uri.queryParameters["token"].map(String.init), tokens: tokens)
        return try webSocketRequest(uri, token: token)
    }

    /// The router the upgrade requests go to: only `/v1/ws`, behind the token check. ``WebSocketUpgradeGate``
    /// has answered the requests that fail their checks (401, 400, 403) before they get here.
    func makeWebSocketRouter() -> Router<GatewayContext> {
        let router = Router(context: GatewayContext.self)
        router.add(middleware: BearerAuthentication(tokens: broker.configuration.tokens))
        let broker = self.broker
        router.ws(
            "/v1/ws",
            shouldUpgrade: { request, context in
                _ = try self.webSocketRequest(request.uri, token: context.token)
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, webSocket in
                // Checked at the upgrade; read again here, where the handler starts.
                guard
                    let asked = try? self.webSocketRequest(
                        webSocket.request.uri, token: webSocket.requestContext.token)
                else { return }
                var connection = WebSocketConnection(
                    broker: broker, principal: webSocket.requestContext.principal("ws"), outbound: outbound)
                broker.metrics.connection(.websocket, 1)
                await connection.serve(inbound, subscribing: asked)
                broker.metrics.connection(.websocket, -1)
            }
        )
        return router
    }

    /// `GET /v1/ws` that was not upgraded: the reason (401, 400, 403, 503), or 426 for a plain request.
    func addWebSocketRoutes(to router: Router<GatewayContext>) {
        router.get("/v1/ws") { request, context -> Response in
            _ = try self.webSocketRequest(request.uri, token: context.token)
            throw APIError(.upgradeRequired, "invalid_request", "GET /v1/ws must be a WebSocket upgrade")
        }
    }
}

/// One WebSocket client: its session, and a task per live subscription writing its events.
struct WebSocketConnection {
    private var session: IPCSession
    private let outbound: WebSocketOutboundWriter
    private let maxFrame: Int

    init(broker: Broker, principal: Principal, outbound: WebSocketOutboundWriter) {
        var session = IPCSession(broker: broker, greeted: principal)
        // Confirmations of publishes come from the log's thread, after the read that asked for them.
        session.sendLater = { bytes in
            Task { try? await Self.write(frames: bytes, to: outbound) }
        }
        self.session = session
        self.outbound = outbound
        self.maxFrame = broker.configuration.ipc.maxFrame
    }

    /// Subscribes to the query's topics, then answers messages until the client leaves or a reply closes
    /// the socket; every subscription ends with it (what it still queues counts as `failed`).
    mutating func serve(_ inbound: WebSocketInboundStream, subscribing asked: HTTPGateway.WebSocketRequest) async {
        await withTaskGroup(of: Void.self) { deliveries in
            defer {
                session.end()
                deliveries.cancelAll()
            }
            if !asked.topics.isEmpty {
                var request = JSONWriter()
                request.append(raw: "{\"op\":\"subscribe\",\"topics\":[")
                for (index, topic) in asked.topics.enumerated() {
                    if index > 0 { request.append(raw: ",") }
                    request.append(string: topic.text)
                }
                request.append(raw: "],\"overflow\":\"drop_newest\",\"buffer\":")
                request.append(integer: asked.buffer)
                request.append(raw: "}")
                guard await handle(ByteBuffer(bytes: request.bytes), deliveries: &deliveries) else { return }
            }
            do {
                for try await message in inbound.messages(maxSize: maxFrame) {
                    let frame: ByteBuffer
                    switch message {
                    case .text(let text): frame = ByteBuffer(string: text)
                    case .binary:
                        var error = FrameWriter()
                        error.error(ProtocolError(.badFrame, "messages are text frames holding one JSON object"))
                        try await Self.write(frames: error.bytes, to: outbound)
                        continue
                    }
                    guard await handle(frame, deliveries: &deliveries) else { return }
                }
            } catch {
                // The client went away, or sent a message over `ipc.max_frame`: the socket is closed.
            }
        }
    }

    /// Handles one message and writes its replies; starts the deliveries of new subscriptions after their
    /// `ok`. Returns whether the socket stays open.
    private mutating func handle(_ frame: ByteBuffer, deliveries: inout TaskGroup<Void>) async -> Bool {
        let keepOpen = session.handle([.frame(frame)])
        let replies = session.replies.bytes
        session.replies.clear()
        do {
            try await Self.write(frames: replies, to: outbound)
        } catch {
            return false
        }
        for subscription in session.pendingDeliveries {
            let outbound = self.outbound
            deliveries.addTask { await Self.deliver(subscription, to: outbound) }
        }
        session.pendingDeliveries.removeAll()
        // Cancelled by the session: their delivery tasks see the end and stop.
        session.endedDeliveries.removeAll()
        return keepOpen
    }

    /// Writes a subscription's events as they come, one message each; an event counts as `successful` once
    /// written, as `failed` when the socket closed first. A client that reads slowly holds the writes back,
    /// and its subscription's queue fills and drops the newest events (`channel_full`).
    private static func deliver(_ subscription: Subscription, to outbound: WebSocketOutboundWriter) async {
        var batch = Deque<SubscriptionDelivery>()
        var frame = FrameWriter()
        while await subscription.nextBatch(into: &batch) {
            while let delivery = batch.popFirst() {
                frame.event(subscription: subscription.id, seq: delivery.seq, envelope: delivery.envelope)
                do {
                    try await write(frames: frame.take(), to: outbound)
                    subscription.recordDelivered(1)
                } catch {
                    subscription.recordFailed(1 + batch.count)
                    subscription.cancel()
                    return
                }
            }
        }
        subscription.recordFailed(batch.count)
    }

    /// Writes each length-prefixed frame of `bytes` as one text message, without the prefix.
    static func write(frames bytes: [UInt8], to outbound: WebSocketOutboundWriter) async throws {
        var start = 0
        while let length = FrameLength.read(bytes[start...]) {
            let body = ByteBuffer(bytes: bytes[(start + 4)..<(start + 4 + length)])
            try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: body)))
            start += 4 + length
        }
    }
}
