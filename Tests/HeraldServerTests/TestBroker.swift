import Foundation
import HeraldClient
import HeraldCore
import HeraldLog
import HeraldProtocol
import HeraldRabbitMQ
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

@testable import HeraldServer

/// The tests' metrics backend, the same as `herald serve`'s: swift-metrics can be bootstrapped once per
/// process, so every broker of the test run reports to this registry (counters add up across tests).
let testMetrics: PrometheusCollectorRegistry = {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return registry
}()

/// A real broker on a socket in a fresh temporary directory, inside a `ServiceGroup` as `herald serve`
/// runs it; `stop()` shuts it down gracefully and removes the directory.
struct TestBroker {
    let directory: String
    let listener: IPCListener
    /// The TCP listener, when the configuration sets `ipc.tcp` (use port 0).
    let tcpListener: IPCListener?
    /// The HTTP gateway, when started with `http`.
    let gateway: HTTPGateway?
    let broker: Broker
    /// The module supervisor, when started with `modules`.
    let supervisor: ModuleSupervisor?
    private let services: ServiceGroup
    private let running: Task<Void, any Error>

    var socketPath: String { listener.path }

    /// A client of the HTTP gateway (started with `http`), presenting `token` when given.
    func http(token: String? = nil) -> HeraldHTTPClient {
        HeraldHTTPClient(address: gateway!.address, token: token)
    }

    /// Starts a broker; with `durable`, it stores events in a durable log in its directory as `herald serve`
    /// does (without, it is a pure in-memory bus, and deliveries carry no `offset` or `partition`).
    /// `lagMonitor: false` leaves the group lag monitor out, for tests that run its rounds themselves. With
    /// `http`, the HTTP gateway listens on a free loopback port and the broker completes its startup
    /// (`node.startup_completed`) once everything listens, as `herald serve` does.
    ///
    /// With `bridge`, the RabbitMQ bridge of `[bridge.rabbitmq]` runs (the durable log is needed).
    ///
    /// With `modules`, a ``ModuleSupervisor`` runs the modules of that directory; the test starts them with
    /// `supervisor.startAll()`. `logger` replaces the quiet default.
    static func start(
        durable: Bool = false, segmentBytes: Int? = nil, lagMonitor: Bool = true, http: Bool = false,
        modules: String? = nil, bridge: Bool = false, logger customLogger: Logger? = nil,
        _ configure: (inout HeraldConfiguration) -> Void = { _ in }
    )
        async throws -> TestBroker
    {
        _ = testMetrics
        let directory = NSTemporaryDirectory() + "herald-test-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            return try await start(
                in: directory, durable: durable, segmentBytes: segmentBytes, lagMonitor: lagMonitor, http: http,
                modules: modules, bridge: bridge,
                logger: customLogger, configure)
        } catch {
            // A broker that did not start leaves nothing behind.
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    private static func start(
        in directory: String, durable: Bool, segmentBytes: Int?, lagMonitor: Bool, http: Bool, modules: String?,
        bridge: Bool,
        logger customLogger: Logger?, _ configure: (inout HeraldConfiguration) -> Void
    ) async throws -> TestBroker {
        var configuration = HeraldConfiguration()
        configuration.dataDirectory = directory
        // Heartbeat pings are frames a test does not expect; only heartbeat tests shorten the interval.
        configuration.ipc.heartbeatMs = 3_600_000
        // Nor does a test expect a redelivery it did not ask for: with hundreds of tests sharing two cores, an
        // event can wait longer than the default 30 s between its delivery and the test's ack (a lag test
        // saw its first event delivered again, and its acks miss). Tests of redelivery set a short wait.
        configuration.groups.ackWaitMs = 3_600_000
        configuration.http.listen = "127.0.0.1:0"
        if let modules { configuration.modules.directory = modules }
        configure(&configuration)
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        var logger = Logger(label: "herald-test")
        logger.logLevel = .warning
        if let customLogger { logger = customLogger }
        var logConfiguration = configuration.logConfiguration
        // Not a configuration key: tests that need a segment to roll soon make them small.
        if let segmentBytes { logConfiguration.segmentBytes = segmentBytes }
        let log = durable ? try DurableLog(configuration: logConfiguration) : nil
        let groups = try log.map {
            try ConsumerGroups(log: $0, directory: configuration.groupsDirectory, settings: configuration.groupSettings)
        }
        let broker = Broker(configuration: configuration, logger: logger, log: log, groups: groups)
        let listener = IPCListener(broker: broker)
        let tcpListener = IPCListener.tcp(for: broker)
        let gateway = http ? HTTPGateway(broker: broker, metrics: { testMetrics.emitToString() }) : nil
        let supervisor = modules == nil ? nil : ModuleSupervisor(broker: broker)
        var all: [any Service] = [listener]
        if let tcpListener { all.append(tcpListener) }
        if bridge { all.append(try RabbitMQBridge(broker: broker)) }
        if let gateway { all.append(gateway) }
        if lagMonitor { all.append(GroupLagMonitor(broker: broker)) }
        if let supervisor { all.append(supervisor) }
        let services = ServiceGroup(
            configuration: .init(
                services: all,
                logger: logger))
        let running = Task { try await services.run() }
        try await listener.waitUntilListening()
        try await tcpListener?.waitUntilListening()
        if let gateway {
            try await gateway.waitUntilListening()
            broker.completeStartup(components: ["ipc", "http"])
        }
        return TestBroker(
            directory: directory,
            listener: listener,
            tcpListener: tcpListener,
            gateway: gateway,
            broker: broker,
            supervisor: supervisor,
            services: services,
            running: running
        )
    }

    func stop() async throws {
        beginStopping()
        try await stopped()
    }

    /// Starts the graceful shutdown without waiting for it.
    func beginStopping() {
        Task { await services.triggerGracefulShutdown() }
    }

    /// Waits until the broker has stopped, and removes its directory.
    func stopped() async throws {
        try await running.value
        // As `herald serve` ends: the shutdown's own maintenance is stored before the log closes.
        await broker.completeShutdown()
        broker.groups?.close()
        broker.log?.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Waits until the broker has stopped and closes its log, leaving its directory for another broker.
    func stoppedKeepingDirectory() async throws {
        try await running.value
        await broker.completeShutdown()
        broker.groups?.close()
        broker.log?.close()
    }

    /// Runs `body` with a connection to this broker (over TCP when `tcp` is set), closing it afterwards.
    func withConnection<Result>(tcp: Bool = false, _ body: (inout Conversation) async throws -> Result)
        async throws -> Result
    {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<[InboundFrame], ByteBuffer>> = {
            channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(FrameDecoder(maximumLength: 1 << 24))
                )
                return try NIOAsyncChannel<[InboundFrame], ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        let channel =
            if tcp, let port = tcpListener?.boundPort {
                try await bootstrap.connect(host: "127.0.0.1", port: port, channelInitializer: initializer)
            } else {
                try await bootstrap.connect(unixDomainSocketPath: socketPath, channelInitializer: initializer)
            }
        return try await channel.executeThenClose { inbound, outbound in
            var conversation = Conversation(frames: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(&conversation)
        }
    }

    /// Publishes `count` events of type `bulk` with a string payload of `payloadBytes` bytes, from a module
    /// `publisher`, and returns once the broker has handled every one of them.
    func publishBulk(_ count: Int, payloadBytes: Int) async throws {
        let payload = "\"" + String(repeating: "x", count: payloadBytes) + "\""
        try await withModule("publisher") { (publisher: inout Conversation) async throws in
            for _ in 0..<count {
                try await publisher.send(#"{"op":"publish","event":{"event_type":"bulk","payload":"# + payload + "}}")
            }
            // Replies come in request order: this pong means every publish above was handled.
            let pong = try await publisher.request(#"{"op":"ping","id":"bulk-done"}"#)
            guard pong == #"{"op":"pong","id":"bulk-done"}"# else { throw BulkPublishFailed(reply: pong) }
        }
    }

    /// Runs `body` with a connection that has already said hello as `module`.
    /// With `token`, the hello presents it.
    func withModule<Result>(
        _ module: String, token: String? = nil, _ body: (inout Conversation) async throws -> Result
    ) async throws -> Result {
        try await withConnection { conversation in
            let presented = token.map { #","token":""# + $0 + "\"" } ?? ""
            try await conversation.send(
                #"{"op":"hello","protocol":1,"module":{"name":""# + module + #"","version":"1.0"}"# + presented + "}")
            // With a short heartbeat the broker may ping before the client's hello arrives.
            var welcome = try await conversation.receive()
            while welcome == #"{"op":"ping"}"# { welcome = try await conversation.receive() }
            precondition(welcome?.hasPrefix(#"{"op":"welcome""#) == true, "no welcome: \(welcome ?? "closed")")
            return try await body(&conversation)
        }
    }
}

/// One client connection: send JSON frames, receive them back as text.
struct Conversation {
    var frames: NIOAsyncChannelInboundStream<[InboundFrame]>.AsyncIterator
    /// Frames read in one batch and not returned yet.
    var unread: [InboundFrame] = []
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

    /// Sends `json` as one frame.
    func send(_ json: String) async throws {
        try await sendRaw(lengthPrefixed(Array(json.utf8)))
    }

    /// Sends bytes exactly as given.
    func sendRaw(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// The next frame as text, or `nil` once the broker has closed the connection.
    mutating func receive() async throws -> String? {
        do {
            while unread.isEmpty {
                guard let batch = try await frames.next() else { return nil }
                unread = batch
            }
            guard case .frame(let buffer) = unread.removeFirst() else { return nil }
            return String(buffer: buffer)
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .eof {
            return nil
        } catch let error as IOError where error.errnoCode == ECONNRESET {
            return nil
        }
    }

    /// Sends `json` and returns the next frame.
    /// Sends `json` and returns the next frame that is not a heartbeat ping (the broker may ping a
    /// connection at any time, and does when a slow test machine keeps the client from speaking for a
    /// heartbeat).
    mutating func request(_ json: String) async throws -> String? {
        try await send(json)
        var reply = try await receive()
        while reply == #"{"op":"ping"}"# { reply = try await receive() }
        return reply
    }
}

func lengthPrefixed(_ body: [UInt8]) -> [UInt8] {
    FrameLength.prefix(body.count) + body
}

/// The bulk publisher's final `ping` was not answered with its `pong`.
struct BulkPublishFailed: Error {
    let reply: String?
}

/// Waits, yielding, until `condition` holds (the test's time limit ends a wait that never does).
func waitUntil(_ condition: () -> Bool) async throws {
    while !condition() {
        try await Task.sleep(for: .milliseconds(2))
    }
}
