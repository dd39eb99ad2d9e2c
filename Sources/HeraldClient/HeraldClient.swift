import HeraldCore
import HeraldProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A connection to a Herald broker over its IPC socket (PROTOCOL.md §2), for a module written in Swift.
///
/// ```swift
/// let client = try await HeraldClient.connect(.fromEnvironment(module: "fee-oracle"))
/// let blocks = try await client.subscribe(["block.new.#"])
/// try await client.publish(try EventEnvelope(eventType: "fee.estimate", chainID: 138))
/// for await block in blocks { … }
/// await client.close()
/// ```
///
/// `connect` fails when the broker cannot be reached or refuses the `hello`. After that the client keeps
/// its connection: when it is lost it reconnects with backoff, says hello again, subscribes every open
/// subscription again and repeats `ready` if it was sent, logging each step. Calls made while it
/// reconnects wait for the new connection; a request whose reply was lost with the old connection fails
/// with ``HeraldClientError/connectionLost``.
public final class HeraldClient: Sendable {
    /// How this client connects.
    public let configuration: HeraldClientConfiguration
    private var logger: Logger { configuration.logger }
    private let state = Mutex(State())
    private let requestIDs = Atomic<Int64>(0)
    private let maintainer = Mutex<Task<Void, Never>?>(nil)

    private struct State {
        /// The connection, once it said hello and restored the subscriptions.
        var link: ClientLink?
        var closed = false
        /// Calls waiting for a connection.
        var waiters: [CheckedContinuation<ClientLink, any Error>] = []
        var subscriptions: [UInt64: Subscription] = [:]
        var nextSubscription: UInt64 = 1
        var readySent = false
        var welcome: ServerFrame.Welcome?
    }

    /// A subscription as the client keeps it across connections: live, with its counters, or durable,
    /// with its group and sink.
    private struct Subscription {
        var topics: [String]
        var buffer: Int?
        var overflow: OverflowPolicy?
        var counters: HeraldSubscription.Counters?
        var durable: Durable?
        /// Whether the broker accepted it once; only those are subscribed again after a reconnect.
        var established = false

        struct Durable {
            var group: String
            /// `from` as JSON.
            var from: String?
            var maxInFlight: Int?
            var ackWaitMs: Int?
            var sink: HeraldDurableSubscription.Sink
        }

        func finish() {
            counters?.finish()
            durable?.sink.continuation.finish()
        }

        func write(_ writer: inout RequestWriter, id: RequestID) {
            if let durable {
                writer.subscribe(
                    id: id, topics: topics, group: durable.group, from: durable.from, maxInFlight: durable.maxInFlight,
                    ackWaitMs: durable.ackWaitMs)
            } else {
                writer.subscribe(id: id, topics: topics, buffer: buffer, overflow: overflow)
            }
        }
    }

    private init(configuration: HeraldClientConfiguration) {
        self.configuration = configuration
    }

    /// Connects, says hello, and keeps the connection until ``close()``.
    public static func connect(_ configuration: HeraldClientConfiguration) async throws -> HeraldClient {
        let client = HeraldClient(configuration: configuration)
        let (outcomes, outcome) = AsyncStream<Result<Void, any Error>>.makeStream()
        client.maintainer.withLock { $0 = Task { await client.maintain(reportingFirstTo: outcome) } }
        for await result in outcomes {
            try result.get()
            return client
        }
        throw HeraldClientError.closed
    }

    /// The broker's session name for the current connection (`s-7`).
    public var session: String? { state.withLock { $0.welcome?.session } }

    /// The largest frame the broker accepts, from its `welcome`.
    public var maximumFrame: Int? { state.withLock { $0.welcome?.maxFrame } }

    // MARK: Operations

    /// Subscribes to live events matching `topics` (PROTOCOL.md §4.1). `buffer` and `overflow` set the
    /// broker's queue for this subscription (default 100, `drop_newest`).
    public func subscribe(_ topics: [String], buffer: Int? = nil, overflow: OverflowPolicy? = nil) async throws
        -> HeraldSubscription
    {
        let (stream, continuation) = AsyncStream<EventEnvelope>.makeStream(
            bufferingPolicy: .bufferingOldest(configuration.subscriptionBuffer)
        )
        let counters = HeraldSubscription.Counters(continuation: continuation)
        let id = try await establish(
            Subscription(topics: topics, buffer: buffer, overflow: overflow, counters: counters),
            onTermination: { ended in continuation.onTermination = { _ in ended() } })
        return HeraldSubscription(id: id, topics: topics, stream: stream, counters: counters)
    }

    /// Joins consumer group `group` (PROTOCOL.md §4.2), made at `from` when it is new, reading the stored
    /// events matching `topics` at least once. `maxInFlight` and `ackWaitMs` override the broker's
    /// `[groups]` defaults for this member.
    public func subscribe(
        _ topics: [String], group: String, from: GroupStartPosition? = nil, maxInFlight: Int? = nil,
        ackWaitMs: Int? = nil
    ) async throws -> HeraldDurableSubscription {
        let (stream, continuation) = AsyncStream<HeraldDelivery>.makeStream()
        let sink = HeraldDurableSubscription.Sink(continuation: continuation)
        let from = from.map { position -> String in
            switch position {
            case .latest: #""latest""#
            case .earliest: #""earliest""#
            case .offset(let offset): #"{"offset":\#(offset)}"#
            case .time(let milliseconds): #"{"time":"\#(Timestamp.format(millisecondsSinceEpoch: milliseconds))"}"#
            }
        }
        let durable = Subscription.Durable(
            group: group, from: from, maxInFlight: maxInFlight, ackWaitMs: ackWaitMs, sink: sink)
        let id = try await establish(
            Subscription(topics: topics, durable: durable),
            onTermination: { ended in continuation.onTermination = { _ in ended() } })
        return HeraldDurableSubscription(id: id, group: group, topics: topics, stream: stream, sink: sink)
    }

    /// Registers `subscription` (before the request, so that events right after the `ok` find it), asks the
    /// broker for it, and unsubscribes when its stream ends; returns the client's number for it.
    private func establish(
        _ subscription: Subscription,
        onTermination: (@escaping @Sendable () -> Void) -> Void
    ) async throws -> UInt64 {
        let id = try state.withLock { state throws(HeraldClientError) in
            guard !state.closed else { throw .closed }
            defer { state.nextSubscription += 1 }
            state.subscriptions[state.nextSubscription] = subscription
            return state.nextSubscription
        }
        do {
            _ = try await request(binds: id) { writer, requestID in subscription.write(&writer, id: requestID) }
        } catch {
            _ = state.withLock { $0.subscriptions.removeValue(forKey: id) }
            subscription.finish()
            throw error
        }
        state.withLock { $0.subscriptions[id]?.established = true }
        onTermination { [weak self] in
            guard let self else { return }
            Task { await self.unsubscribe(id) }
        }
        return id
    }

    /// Sends an `ack` or `nack` for `delivery` on the connection it came on; nothing when that connection
    /// is gone (the broker delivers the event again).
    func acknowledge(
        _ delivery: HeraldDelivery, confirmed: Bool, _ encode: (inout RequestWriter, RequestID?) -> Void
    ) async throws {
        guard state.withLock({ $0.link === delivery.link }) else { return }
        do {
            if confirmed {
                _ = try await send(on: delivery.link) { writer, id in encode(&writer, id) }
            } else {
                var writer = RequestWriter()
                encode(&writer, nil)
                try await delivery.link.sendWithBackpressure(writer.take())
            }
        } catch {
            // The connection went while this was sent: as when it was gone before, nothing (the broker
            // delivers the event again). A consumer's loop (`consume`) is not ended by it.
            if delivery.link.hasFailed || state.withLock({ $0.link !== delivery.link }) { return }
            throw error
        }
    }

    /// Publishes without waiting for the broker: returns once the event is queued for the socket. A refusal
    /// (an invalid event, `forbidden`, `rate_limited`) is logged with the event's id; use
    /// ``publishConfirmed(_:)`` to learn of it.
    public func publish(_ envelope: EventEnvelope) async throws {
        try checkSize(of: envelope)
        var writer = RequestWriter()
        writer.publish(id: nil, envelope: envelope)
        try await openLink().sendWithBackpressure(writer.take())
    }

    /// Publishes and waits for the broker's `ok`: the event was accepted and, when its topic is stored, is
    /// on disk under the broker's fsync policy (the receipt names its offset and partition). Throws the broker's `ProtocolError` when it refuses the event.
    @discardableResult
    public func publishConfirmed(_ envelope: EventEnvelope) async throws -> PublishReceipt {
        try checkSize(of: envelope)
        let reply = try await request { writer, id in writer.publish(id: id, envelope: envelope) }
        guard case .ok(_, let fields) = reply, let eventID = fields.eventID else {
            throw HeraldClientError.protocolViolation("a publish was answered without event_id")
        }
        return PublishReceipt(
            eventID: eventID,
            duplicate: fields.duplicate ?? false,
            offset: fields.offset,
            partition: fields.partition
        )
    }

    /// Refuses, without sending it, an envelope the broker would refuse for its size (PROTOCOL.md §2.1): a
    /// frame above `max_frame` would make the broker close the connection.
    private func checkSize(of envelope: EventEnvelope) throws(ProtocolError) {
        guard let maximumFrame, envelope.json.count > maximumFrame - FrameLength.eventHeaderAllowance else { return }
        throw ProtocolError(
            .invalidEvent,
            "the envelope is \(envelope.json.count) bytes, more than max_frame − 1024 = \(maximumFrame - FrameLength.eventHeaderAllowance)"
        )
    }

    /// Publishes a catalog event (EVENTS.md), without waiting for the broker.
    public func publish<Event: CatalogEvent>(_ event: Event, chainID: Int64? = nil) async throws {
        try await publish(try EventEnvelope(event, chainID: chainID))
    }

    /// Tells the broker this module finished starting (PROTOCOL.md §3), for modules that never subscribe.
    public func ready() async throws {
        state.withLock { $0.readySent = true }
        _ = try await request { writer, id in writer.ready(id: id) }
    }

    /// The round trip of one `ping`.
    @discardableResult
    public func ping() async throws -> Duration {
        let started = ContinuousClock.now
        _ = try await request { writer, id in writer.ping(id: id) }
        return ContinuousClock.now - started
    }

    /// Delivery statistics per module (PROTOCOL.md §5): every module, or only `module`.
    public func stats(module: String? = nil) async throws -> [String: DeliveryStatistics] {
        let reply = try await request { writer, id in writer.stats(id: id, module: module) }
        guard case .ok(_, let fields) = reply, let stats = fields.stats else {
            throw HeraldClientError.protocolViolation("stats was answered without stats")
        }
        return stats
    }

    /// The modules subscribed to `eventType`, sorted.
    public func subscribers(of eventType: String) async throws -> [String] {
        let reply = try await request { writer, id in writer.subscribers(id: id, eventType: eventType) }
        guard case .ok(_, let fields) = reply, let subscribers = fields.subscribers else {
            throw HeraldClientError.protocolViolation("subscribers was answered without subscribers")
        }
        return subscribers
    }

    /// Says `bye`, waits for the broker to flush what it owes, and closes. Every subscription ends.
    public func close() async {
        let (link, waiters) = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return (state.link, state.waiters)
        }
        for waiter in waiters { waiter.resume(throwing: HeraldClientError.closed) }
        if let link {
            // A broker that does not answer `bye` (hung, or a network that drops everything) does not hold the
            // close: the connection is cut after a few seconds, which fails the wait.
            let cut = Task {
                try await Task.sleep(for: .seconds(5))
                try await link.channel.close()
            }
            _ = try? await send(on: link) { writer, id in writer.bye(id: id) }
            cut.cancel()
            try? await link.channel.close()
        }
        let task = maintainer.withLock { $0 }
        task?.cancel()
        await task?.value
        let subscriptions = state.withLock { state in
            defer { state.subscriptions.removeAll() }
            return state.subscriptions.values
        }
        for subscription in subscriptions { subscription.finish() }
    }

    // MARK: Requests

    /// Sends a request on the open connection (waiting for one) and returns its reply; an `error` reply is
    /// thrown.
    private func request(binds: UInt64? = nil, _ encode: (inout RequestWriter, RequestID) -> Void) async throws
        -> ServerFrame
    {
        try await send(on: try await openLink(), binds: binds, encode)
    }

    private func send(
        on link: ClientLink,
        binds: UInt64? = nil,
        _ encode: (inout RequestWriter, RequestID) -> Void
    ) async throws -> ServerFrame {
        let id = requestIDs.add(1, ordering: .relaxed).newValue
        var writer = RequestWriter()
        encode(&writer, .integer(id))
        let reply = try await link.request(id: id, binds: binds, writer.take())
        if case .error(let error) = reply { throw error }
        return reply
    }

    /// The open connection, waiting while the client connects or reconnects.
    private func openLink() async throws -> ClientLink {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<ClientLink, HeraldClientError>? in
                if state.closed { return .failure(.closed) }
                if let link = state.link { return .success(link) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func unsubscribe(_ id: UInt64) async {
        let link = state.withLock { state -> ClientLink? in
            state.subscriptions[id] = nil
            return state.closed ? nil : state.link
        }
        guard let link, let server = link.unbind(local: id) else { return }
        do {
            _ = try await send(on: link) { writer, requestID in writer.unsubscribe(id: requestID, subscription: server)
            }
        } catch {
            logger.debug("unsubscribe failed", metadata: ["herald.error": "\(error)"])
        }
    }

    // MARK: The connection

    /// Connects, and reconnects after every loss until the client closes. The first attempt's outcome goes
    /// to `connect`: a client that never connected does not retry.
    private func maintain(reportingFirstTo first: AsyncStream<Result<Void, any Error>>.Continuation) async {
        var first: AsyncStream<Result<Void, any Error>>.Continuation? = first
        var attempt = 0
        while !isClosed {
            do {
                try await connectOnce {
                    if let reporter = first {
                        reporter.yield(.success(()))
                        reporter.finish()
                        first = nil
                    }
                    attempt = 0
                }
            } catch {
                if let reporter = first {
                    reporter.yield(.failure(error))
                    reporter.finish()
                    shutDown()
                    return
                }
                if let refusal = error as? ProtocolError,
                    refusal.code == .unauthorized || refusal.code == .unsupportedProtocol
                {
                    logger.error(
                        "the broker refused this client; not reconnecting", metadata: ["herald.error": "\(refusal)"])
                    shutDown()
                    return
                }
                logger.debug("connection ended", metadata: ["herald.error": "\(error)"])
            }
            guard !isClosed else { return }
            guard configuration.reconnect.enabled else {
                logger.warning("connection to the broker lost; reconnecting is off, the client closes")
                shutDown()
                return
            }
            let delay = configuration.reconnect.delay(attempt: attempt)
            attempt += 1
            logger.warning(
                "connection to the broker lost; reconnecting",
                metadata: [
                    "herald.endpoint": "\(configuration.endpoint)", "herald.retry_in": "\(delay)",
                    "herald.attempt": "\(attempt)",
                ]
            )
            do {
                try await Task.sleep(for: delay)
            } catch {
                return
            }
        }
    }

    private var isClosed: Bool { state.withLock { $0.closed } }

    /// One connection, from connect to its end: hello, the subscriptions again, `ready` again, then reading
    /// until the broker or the network ends it. `opened` runs once the connection is usable.
    private func connectOnce(opened: () -> Void) async throws {
        let (frames, input) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let budget = ReadBudget()
        let channel = try await connectChannel(input, budget: budget)
        let link = ClientLink(channel: channel)
        defer {
            link.fail(with: HeraldClientError.connectionLost)
            channel.close(promise: nil)
            state.withLock { state in
                if state.link === link { state.link = nil }
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // However the reading ends (the connection closed or reset, a frame that does not parse, the
                // task cancelled by `close()`), the requests still waiting fail: the handshake waits on one,
                // and nothing else would resume it.
                defer { link.fail(with: HeraldClientError.connectionLost) }
                try await self.read(frames, from: link, budget: budget)
            }
            try await handshake(on: link)
            let waiters = state.withLock { state in
                state.link = link
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: link) }
            opened()
            // The reader ends with the connection.
            try await group.next()
            group.cancelAll()
        }
    }

    private func connectChannel(
        _ input: AsyncThrowingStream<ByteBuffer, any Error>.Continuation, budget: ReadBudget
    ) async throws -> any Channel {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        // The largest `max_frame` a broker can announce (`ipc.max_frame`'s range).
                        ByteToMessageHandler(ClientFrameDecoder(maximumLength: 64 << 20)),
                        FrameForwarder(input, budget: budget)
                    )
                }
            }
        do {
            switch configuration.endpoint {
            case .unixSocket(let path):
                return try await bootstrap.connect(unixDomainSocketPath: path).get()
            case .tcp(let host, let port):
                return try await bootstrap.connect(host: host, port: port).get()
            }
        } catch {
            throw HeraldClientError.cannotConnect("\(configuration.endpoint): \(error)")
        }
    }

    /// `hello`, then every established subscription again (its events start after its `ok`), then `ready`
    /// when it had been sent.
    private func handshake(on link: ClientLink) async throws {
        let reply = try await send(on: link) { writer, id in
            writer.hello(
                id: id,
                module: configuration.module,
                version: configuration.version,
                instance: configuration.instance,
                token: configuration.token
            )
        }
        guard case .welcome(let welcome) = reply else {
            throw HeraldClientError.protocolViolation("hello was not answered with welcome")
        }
        let (subscriptions, readySent, reconnecting) = state.withLock { state in
            defer { state.welcome = welcome }
            let established = state.subscriptions.filter { $0.value.established }.sorted { $0.key < $1.key }
            return (established, state.readySent, state.welcome != nil)
        }
        for (id, subscription) in subscriptions {
            subscription.counters?.lastSeq.store(0, ordering: .relaxed)
            do {
                _ = try await send(on: link, binds: id) { writer, requestID in
                    subscription.write(&writer, id: requestID)
                }
                // Cancelled while this connection's handshake ran (its unsubscribe found no link to send
                // on): the broker would keep feeding it — a group member would hold its partitions and never
                // ack — so it is unsubscribed here.
                if state.withLock({ $0.subscriptions[id] == nil }), let server = link.unbind(local: id) {
                    _ = try await send(on: link) { writer, requestID in
                        writer.unsubscribe(id: requestID, subscription: server)
                    }
                }
            } catch let refusal as ProtocolError where refusal.code == .shuttingDown {
                // The broker is stopping: this connection ends, and the next one subscribes again.
                throw refusal
            } catch let refusal as ProtocolError {
                // The broker's rules changed under the client (a token's permissions, say): that subscription ends.
                logger.error(
                    "a subscription was refused after reconnecting; it ends",
                    metadata: ["herald.topics": "\(subscription.topics)", "herald.error": "\(refusal)"]
                )
                subscription.finish()
            }
        }
        if readySent { _ = try await send(on: link) { writer, id in writer.ready(id: id) } }
        if reconnecting {
            logger.notice(
                "reconnected to the broker",
                metadata: ["herald.session": "\(welcome.session)", "herald.subscriptions": "\(subscriptions.count)"]
            )
        } else {
            logger.debug("connected to the broker", metadata: ["herald.session": "\(welcome.session)"])
        }
    }

    /// Reads frames until the connection ends: replies go to their requests, events to their
    /// subscriptions, pings are answered. Each frame taken gives its bytes back to `budget`, and reading the
    /// socket goes on when the budget says so.
    private func read(
        _ frames: AsyncThrowingStream<ByteBuffer, any Error>, from link: ClientLink, budget: ReadBudget
    ) async throws {
        for try await buffer in frames {
            if budget.taken(buffer.readableBytes) { link.channel.read() }
            let frame: ServerFrame
            do {
                frame = try buffer.withUnsafeReadableBytes { bytes throws(ProtocolError) in
                    try ServerFrame.parse(bytes.assumingMemoryBound(to: UInt8.self))
                }
            } catch {
                throw HeraldClientError.protocolViolation(error.message)
            }
            switch frame {
            case .event(let server, let seq, let attempt, let event):
                deliver(event, seq: seq, attempt: attempt, subscription: server, on: link)
            case .ping:
                var writer = RequestWriter()
                writer.pong()
                link.send(writer.take())
            case .welcome(let welcome):
                resolve(welcome.id, with: frame, on: link)
            case .ok(let id, _), .pong(let id):
                resolve(id, with: frame, on: link)
            case .error(let error):
                if error.requestID != nil {
                    resolve(error.requestID, with: frame, on: link)
                } else {
                    logger.warning(
                        "the broker refused a publish",
                        metadata: ["herald.event_id": "\(error.eventID ?? "-")", "herald.error": "\(error)"]
                    )
                    if error.code.closesConnection { throw error }
                }
            }
        }
    }

    private func resolve(_ id: RequestID?, with frame: ServerFrame, on link: ClientLink) {
        guard case .integer(let id)? = id, let pending = link.takePending(id) else { return }
        if let local = pending.binds, case .ok(_, let fields) = frame, let server = fields.subscription {
            // Bound before the next frame is read: the subscription's first events follow its `ok`.
            link.bind(server: server, to: local)
        }
        pending.continuation.resume(returning: frame)
    }

    private func deliver(
        _ event: [UInt8], seq: UInt64, attempt: Int?, subscription server: UInt64, on link: ClientLink
    ) {
        guard let local = link.local(for: server), let subscription = state.withLock({ $0.subscriptions[local] })
        else { return }
        let envelope: EventEnvelope
        do {
            envelope = try EventEnvelope(json: event, form: .delivered)
        } catch {
            logger.error("the broker delivered an invalid envelope", metadata: ["herald.error": "\(error)"])
            return
        }
        if let durable = subscription.durable {
            durable.sink.continuation.yield(
                HeraldDelivery(
                    envelope: envelope, seq: seq, attempt: attempt ?? 1, subscription: server, link: link, client: self)
            )
        } else {
            subscription.counters?.deliver(envelope, seq: seq)
        }
    }

    /// Closes the client for good: waiting calls fail, subscriptions end.
    private func shutDown() {
        let (waiters, subscriptions) = state.withLock { state in
            state.closed = true
            defer {
                state.waiters.removeAll()
                state.subscriptions.removeAll()
            }
            return (state.waiters, state.subscriptions.values)
        }
        for waiter in waiters { waiter.resume(throwing: HeraldClientError.closed) }
        for subscription in subscriptions { subscription.finish() }
    }
}

/// The broker's answer to a confirmed publish.
public struct PublishReceipt: Sendable, Equatable {
    /// The event's id (assigned by the client's envelope when the publisher gave none).
    public var eventID: String
    /// Whether the broker had already accepted an event with this id within its dedup window.
    public var duplicate: Bool
    /// Where the event was stored, when it was.
    public var offset: Int64?
    public var partition: Int?
}
