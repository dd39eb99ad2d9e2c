import HeraldCore
import HeraldProtocol
import Hummingbird
import HummingbirdCore
import NIOHTTP1

/// `GET /v1/ws?topics=P1,P2&buffer=N` (PROTOCOL.md §7): each text message is one JSON object, exactly the
/// frames of the IPC socket without their length prefix. The socket speaks through an ``IPCSession`` that
/// needs no `hello` (the upgrade authenticated it): `subscribe`, `unsubscribe`, `publish`, `ping`, `stats`
/// and `subscribers` work as in §2.2, a malformed message gets an `error` and the socket stays. The query's
/// `topics` are one live subscription (`drop_newest`, `buffer` default 100), announced by
/// `{"op":"ok","subscription":n}` before its first event. Statistics are kept under `ws:<token name>` or
/// `ws:anonymous`; a WebSocket is not a module (no `module.loaded`). Liveness is WebSocket ping frames every
/// `ipc.heartbeat_ms`, which browsers answer on their own.
extension HTTPGateway {
    /// What the upgrade request asks for, and who asks.
    struct WebSocketRequest {
        let topics: [TopicPattern]
        let buffer: Int
        /// `ws:<token name>` or `ws:anonymous`, with the token's permissions.
        let principal: Principal

        /// The `subscribe` frame the query's `topics` stand for: one live subscription, `drop_newest`.
        var subscribeFrame: [UInt8] {
            var request = JSONWriter()
            request.append(raw: "{\"op\":\"subscribe\",\"topics\":[")
            for (index, topic) in topics.enumerated() {
                if index > 0 { request.append(raw: ",") }
                request.append(string: topic.text)
            }
            request.append(raw: "],\"overflow\":\"drop_newest\",\"buffer\":")
            request.append(integer: buffer)
            request.append(raw: "}")
            return request.bytes
        }
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
            guard topics.count <= ClientRequest.maximumTopics else {
                throw .invalidRequest("topics: must hold 1 to \(ClientRequest.maximumTopics) patterns")
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
        return WebSocketRequest(
            topics: topics, buffer: buffer,
            principal: Principal(name: "ws:\(token?.name ?? "anonymous")", permissions: token))
    }

    /// The checks of an upgrade request, as ``WebSocketUpgradeGate`` runs them before the upgrade: the
    /// token when tokens are configured (401), then ``webSocketRequest(_:token:)``.
    func checkUpgrade(_ uri: URI, headers: HTTPHeaders) throws(APIError) -> WebSocketRequest {
        let tokens = broker.configuration.tokens
        let authorization = headers.first(name: "authorization")
        try CrossSiteCheck.check(
            origin: headers.first(name: "origin"), host: headers.first(name: "host"), method: "GET-UPGRADE",
            tokensConfigured: !tokens.isEmpty)
        let token =
            tokens.isEmpty
            ? nil
            : try BearerAuthentication.authenticate(
                authorization: authorization, queryToken: uri.queryParameters["token"].map(String.init), tokens: tokens)
        try RepeatedQueryParameters.check(uri)
        return try webSocketRequest(uri, token: token)
    }

    /// `GET /v1/ws` that was not upgraded: the reason (401, 400, 403, 503), or 426 for a plain request.
    func addWebSocketRoutes(to router: Router<GatewayContext>) {
        router.get("/v1/ws") { request, context -> Response in
            _ = try self.webSocketRequest(request.uri, token: context.token)
            throw APIError(.upgradeRequired, "invalid_request", "GET /v1/ws must be a WebSocket upgrade")
        }
    }
}
