import Dispatch
import Foundation
import HeraldServer
import Logging
import Synchronization

/// A thread that keeps one AMQP connection and does one direction of the bridge's work on it: it connects,
/// serves until the connection fails, and connects again after a backoff that doubles from
/// `reconnect_min_ms` to `reconnect_max_ms`, saying so in the log — until it is stopped.
///
/// rabbitmq-c blocks, so each direction has a thread of its own and never touches an event loop. A watchdog
/// cuts the connection (shuts its socket down, ``AMQPConnection/interrupt()``) when a call hangs on it:
/// - a call that has waited `confirm_timeout_ms` past its own timeout (a publish, an ack or a reject has
///   none: RabbitMQ stops reading a connection that publishes during a resource alarm): the worker connects
///   again, with a backoff that keeps growing while connections end this way, and what was unconfirmed is
///   published again;
/// - at a stop, a connection still being made at once, and any other once the worker has had
///   ``stopGrace`` to finish what it holds.
final class BridgeWorker: Sendable {
    /// How long a stopping worker may take to finish (the outbound's wait for confirms is 5 s of it) before
    /// its connection is cut.
    static let stopGrace: Duration = .seconds(6)
    /// How often the watchdog looks.
    static let watchdogInterval: Duration = .milliseconds(250)

    let direction: String
    private let settings: HeraldConfiguration.RabbitMQBridge
    private let logger: Logger
    private let metrics: BridgeMetrics
    private let stopping = Atomic<Bool>(false)
    /// Set when a connection was given up because RabbitMQ stopped answering (the watchdog cut a call
    /// overdue, or `serve` had no confirm for `confirm_timeout_ms`), with a warning saying so: the backoff
    /// is not started over unless the connection made progress, and no second warning is logged.
    private let stalled = Atomic<Bool>(false)
    /// Set by `serve` when RabbitMQ confirmed or delivered something on the connection (``madeProgress()``).
    private let progressed = Atomic<Bool>(false)
    /// Set by `serve` when the connection ends because a message was refused (``wasRefused()``).
    private let refusedLast = Atomic<Bool>(false)
    /// The connection the thread works on, and whether it is still being opened: what the watchdog cuts.
    private let current = Mutex<(connection: AMQPConnection?, opening: Bool)>((nil, false))
    /// Signalled to cut a backoff or an idle wait short.
    let wake = DispatchSemaphore(value: 0)
    private let finished = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    init(direction: String, settings: HeraldConfiguration.RabbitMQBridge, logger: Logger, metrics: BridgeMetrics) {
        self.direction = direction
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Starts the thread. Each connection is made to `url`, with the topic exchange declared; `prepare`
    /// readies it for this direction, and `serve` works on it and returns when the worker stops (or throws
    /// when the connection fails).
    func start(
        prepare: @escaping @Sendable (AMQPConnection) throws(AMQPError) -> Void,
        serve: @escaping @Sendable (AMQPConnection) throws(AMQPError) -> Void
    ) {
        let settings = self.settings
        let logger = self.logger
        let metrics = self.metrics
        let thread = Thread { [self] in
            var backoff = settings.reconnectMinMs
            var failures = 0
            while !isStopping {
                var connection: AMQPConnection?
                var connected = false
                do throws(AMQPError) {
                    let made = try AMQPConnection()
                    connection = made
                    current.withLock { $0 = (made, true) }
                    // A stop that came before the connection was registered did not see it to cut it.
                    if isStopping { made.interrupt() }
                    try made.open(url: settings.url, heartbeatSeconds: settings.heartbeatSeconds)
                    current.withLock { $0.opening = false }
                    try made.declareExchange(settings.exchange, type: "topic")
                    try prepare(made)
                    metrics.connected(direction, true)
                    if failures > 0 {
                        logger.info(
                            "RabbitMQ bridge reconnected",
                            metadata: ["direction": "\(direction)", "failed_attempts": "\(failures)"])
                    } else {
                        logger.info("RabbitMQ bridge connected", metadata: ["direction": "\(direction)"])
                    }
                    connected = true
                    failures = 0
                    try serve(made)
                    made.close()
                    current.withLock { $0 = (nil, false) }
                } catch {
                    // After a failure a polite close gains nothing, and its request could wait on a socket
                    // RabbitMQ does not read.
                    connection?.interrupt()
                    connection?.close()
                    current.withLock { $0 = (nil, false) }
                    metrics.connected(direction, false)
                    if isStopping { break }
                    // A connection that worked starts the backoff over, unless it was given up as stalled (and
                    // said so) before it got anywhere: during a long resource alarm the backoff grows, and the
                    // reconnections come less and less often.
                    let gaveUpStalled = stalled.exchange(false, ordering: .relaxed)
                    let madeProgress = progressed.exchange(false, ordering: .relaxed)
                    let refused = refusedLast.exchange(false, ordering: .relaxed)
                    if Self.startsBackoffOver(
                        connected: connected, gaveUpStalled: gaveUpStalled, madeProgress: madeProgress,
                        refused: refused)
                    {
                        backoff = settings.reconnectMinMs
                    }
                    if failures == 0 && !gaveUpStalled {
                        logger.warning(
                            "RabbitMQ bridge connection lost; connecting again with backoff",
                            metadata: ["direction": "\(direction)", "error": "\(error)"])
                    } else {
                        logger.debug(
                            "RabbitMQ bridge still cannot connect",
                            metadata: ["direction": "\(direction)", "error": "\(error)", "backoff_ms": "\(backoff)"])
                    }
                    failures += 1
                    metrics.reconnect(direction)
                    // Wake-ups for new events do not cut the backoff short; only a stop does.
                    let deadline = DispatchTime.now() + .milliseconds(backoff)
                    while !isStopping, wake.wait(timeout: deadline) == .success {}
                    backoff = min(backoff * 2, settings.reconnectMaxMs)
                }
            }
            metrics.connected(direction, false)
            let waiters = finished.withLock { state in
                state.done = true
                defer { state.waiters = [] }
                return state.waiters
            }
            waiters.forEach { $0.resume() }
        }
        thread.name = "herald-bridge-\(direction)"
        thread.start()
        Task { [self] in await watch() }
    }

    /// Called by `serve` when RabbitMQ confirmed or delivered something: the connection works.
    func madeProgress() {
        progressed.store(true, ordering: .relaxed)
    }

    /// Called when the connection ends because a message was refused — by RabbitMQ (`basic.nack`) or by the
    /// broker (it cannot store) — and will be again until something changes: the backoff is not started
    /// over, however much the connection did before.
    func wasRefused() {
        refusedLast.store(true, ordering: .relaxed)
    }

    /// Whether the backoff starts over after a connection ended: one that was made and worked does — unless
    /// it was given up as stalled before it got anywhere (during a long resource alarm the backoff grows),
    /// or it ended on a refusal that the next connection meets again (the same message, the same broker).
    static func startsBackoffOver(connected: Bool, gaveUpStalled: Bool, madeProgress: Bool, refused: Bool) -> Bool {
        connected && !refused && (!gaveUpStalled || madeProgress)
    }

    /// Called when the connection is given up because RabbitMQ stopped answering, once a warning said so
    /// (see ``stalled``).
    func gaveUpStalled() {
        stalled.store(true, ordering: .relaxed)
    }

    /// Asks the thread to stop without waiting: `stop()` waits. Both workers of a bridge begin stopping
    /// before either is waited for, so that their graces run at the same time.
    func beginStopping() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        // A connection still being made holds nothing to finish.
        current.withLock { current in
            if current.opening { current.connection?.interrupt() }
        }
    }

    /// Until the thread has finished: cuts a connection whose call hangs, or that outlived the stop's grace
    /// (see the type's comment; a connection still being made at a stop is cut by ``beginStopping()``).
    private func watch() async {
        let overdueLimit = UInt64(settings.confirmTimeoutMs) * 1_000_000
        let clock = ContinuousClock()
        var stopSeen: ContinuousClock.Instant?
        var cut: AMQPConnection?
        while !finished.withLock({ $0.done }) {
            try? await Task.sleep(for: Self.watchdogInterval)
            if isStopping, stopSeen == nil { stopSeen = clock.now }
            let stopExpired = stopSeen.map { clock.now - $0 >= Self.stopGrace } ?? false
            current.withLock { current in
                guard let connection = current.connection, connection !== cut else { return }
                if stopExpired {
                    logger.warning(
                        "RabbitMQ bridge: cutting the connection, the stop's grace is over",
                        metadata: [
                            "direction": "\(direction)", "grace_ms": "\(Self.stopGrace.components.seconds * 1000)",
                        ])
                    connection.interrupt()
                    cut = connection
                } else if connection.overdueNanoseconds > overdueLimit {
                    logger.warning(
                        "RabbitMQ bridge: a call to RabbitMQ is overdue by confirm_timeout_ms (a resource alarm? the network?); cutting the connection",
                        metadata: ["direction": "\(direction)", "confirm_timeout_ms": "\(settings.confirmTimeoutMs)"])
                    connection.interrupt()
                    cut = connection
                    gaveUpStalled()
                }
            }
        }
    }

    /// Asks the thread to stop and waits until it has: `serve` finishes what it holds first, within
    /// ``stopGrace`` (the watchdog cuts the connection then; one still being made is cut at once).
    func stop() async {
        beginStopping()
        await withCheckedContinuation { continuation in
            let done = finished.withLock { state in
                if !state.done { state.waiters.append(continuation) }
                return state.done
            }
            if done { continuation.resume() }
        }
    }
}
