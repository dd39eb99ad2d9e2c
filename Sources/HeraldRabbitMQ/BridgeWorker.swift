import Dispatch
import Foundation
import HeraldServer
import Logging
import Synchronization

/// A thread that keeps one AMQP connection and does one direction of the bridge's work on it: it connects,
/// serves until the connection fails, and connects again after a backoff that doubles from
/// `reconnect_min_ms` to `reconnect_max_ms`, saying so in the log — until it is stopped.
///
/// rabbitmq-c blocks, so each direction has a thread of its own and never touches an event loop.
final class BridgeWorker: Sendable {
    let direction: String
    private let settings: HeraldConfiguration.RabbitMQBridge
    private let logger: Logger
    private let metrics: BridgeMetrics
    private let stopping = Atomic<Bool>(false)
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
                do throws(AMQPError) {
                    let made = try AMQPConnection(url: settings.url, heartbeatSeconds: settings.heartbeatSeconds)
                    connection = made
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
                    failures = 0
                    backoff = settings.reconnectMinMs
                    try serve(made)
                    made.close()
                } catch {
                    connection?.close()
                    metrics.connected(direction, false)
                    if failures == 0 {
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
    }

    /// Asks the thread to stop and waits until it has: `serve` finishes what it holds first.
    func stop() async {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        await withCheckedContinuation { continuation in
            let done = finished.withLock { state in
                if !state.done { state.waiters.append(continuation) }
                return state.done
            }
            if done { continuation.resume() }
        }
    }
}
