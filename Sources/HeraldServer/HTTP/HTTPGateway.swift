import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The HTTP API and WebSocket gateway (PROTOCOL.md §7) on `http.listen`: a Hummingbird application whose
/// routes live in `BrokerAPI`, `EventsAPI`, `GroupsAPI` and `WebSocketGateway`. A `Service`.
///
/// Every endpoint but `/healthz` needs a bearer token when tokens are configured; errors are
/// `{"error":{"code","message"}}` (``APIError``). Requests are served on NIO's event loops; publishes reply
/// once their events are durable.
public final class HTTPGateway: Service, Sendable {
    let broker: Broker
    /// Where it was asked to listen.
    public let listen: String
    private let bound = Mutex<String?>(nil)
    /// The open WebSockets, served on the event loops outside Hummingbird's connection tasks: told and
    /// closed when the gateway stops.
    let webSockets = OpenConnections()
    /// Yields `nil` once listening, or the error that stopped the gateway before it could listen.
    private let listening: AsyncStream<(any Error)?>
    private let listeningContinuation: AsyncStream<(any Error)?>.Continuation

    /// Renders the metrics as Prometheus text; `nil` when the process bootstrapped no metrics backend.
    let metricsText: (@Sendable () -> String)?

    /// The gateway of `broker`, on its `http.listen`; `GET /metrics` answers with `metrics` (the
    /// executable bootstraps swift-metrics with Prometheus and passes its registry's exposition).
    public init(broker: Broker, metrics: (@Sendable () -> String)? = nil) {
        self.broker = broker
        self.metricsText = metrics
        self.listen = broker.configuration.http.listen
        (listening, listeningContinuation) = AsyncStream.makeStream()
    }

    /// `host:port` it listens on, with the real port when port 0 asked for any, once listening.
    public var address: String { bound.withLock { $0 } ?? listen }

    /// Returns once the gateway accepts connections, or throws what stopped it before that.
    public func waitUntilListening() async throws {
        for await failure in listening {
            if let failure { throw failure }
            return
        }
        throw IPCListener.ListenerStopped(reason: "http.listen: the gateway ended before listening")
    }

    public func run() async throws {
        defer {
            listeningContinuation.finish()
            webSockets.announceAll(WebSocketConnectionHandler.GoingAway())
        }
        guard let address = HostPort(listen) else {
            throw IPCListener.ListenerStopped(reason: "http.listen: must be host:port")
        }
        let application = Application(
            responder: HeadAsGet(wrapped: makeRouter().buildResponder()),
            server: serverBuilder(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil, backlog: 4096),
            onServerRunning: { [weak self] channel in
                guard let self else { return }
                let port = channel.localAddress?.port ?? address.port
                let host = address.host.contains(":") ? "[\(address.host)]" : address.host
                self.bound.withLock { $0 = "\(host):\(port)" }
                self.broker.logger.info("http listening", metadata: ["http.address": "\(host):\(port)"])
                self.listeningContinuation.yield(nil)
            },
            logger: broker.logger
        )
        do {
            try await application.run()
        } catch {
            let failure = IPCListener.ListenerStopped(reason: "http.listen: cannot listen on \(listen): \(error)")
            listeningContinuation.yield(failure)
            broker.startupFailed()
            throw failure
        }
    }

    /// HTTP/1 with WebSocket upgrades on `/v1/ws`, refused upgrades answered by ``WebSocketUpgradeGate``.
    private func serverBuilder() -> HTTPServerBuilder {
        let broker = self.broker
        let webSockets = self.webSockets
        return HTTPServerBuilder { responder in
            GatewayChannel(
                responder: responder,
                http1: .init(idleTimeout: .seconds(60)),
                maxFrame: broker.configuration.ipc.maxFrame,
                tokens: broker.configuration.tokens,
                check: { uri, headers throws(APIError) in
                    try self.checkUpgrade(uri, headers: headers)
                },
                serve: { request in
                    WebSocketConnectionHandler(broker: broker, request: request, connections: webSockets)
                }
            )
        }
    }

    /// The API's routes, behind the metrics, error and token middleware.
    func makeRouter() -> Router<GatewayContext> {
        let router = Router(context: GatewayContext.self)
        let routes = RouteMethods()
        router.add(middleware: RequestMetrics(tokens: broker.configuration.tokens))
        router.add(middleware: ErrorBodies(routes: routes))
        router.add(middleware: BearerAuthentication(tokens: broker.configuration.tokens))
        router.add(middleware: RepeatedQueryParameters())
        addBrokerRoutes(to: router)
        addEventRoutes(to: router)
        addGroupRoutes(to: router)
        addWebSocketRoutes(to: router)
        routes.set(router.routes.map { ("\($0.path)", $0.method.rawValue) })
        return router
    }

    /// Reads a request body of at most `http.max_body` bytes; a larger one is 413. A UTF-8 byte order mark
    /// at its start, which some Windows tools write, is dropped (RFC 8259 §8.1 lets a parser ignore it).
    func body(of request: Request) async throws -> ByteBuffer {
        let limit = broker.configuration.http.maxBody
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw APIError(.contentTooLarge, "too_large", "body: \(length) bytes, more than http.max_body = \(limit)")
        }
        do {
            var body = try await request.body.collect(upTo: limit)
            if body.readableBytesView.starts(with: [0xEF, 0xBB, 0xBF]) { body.moveReaderIndex(forwardBy: 3) }
            return body
        } catch is NIOTooManyBytesError {
            // A body without a Content-Length (chunked) found too large while it is read.
            throw APIError(.contentTooLarge, "too_large", "body: more than http.max_body = \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "too_large", "body: more than http.max_body = \(limit) bytes")
        }
    }
}
