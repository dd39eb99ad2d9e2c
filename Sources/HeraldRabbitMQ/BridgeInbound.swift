import Dispatch
import HeraldCore
import HeraldServer
import Logging
import Synchronization

/// The inbound half of the bridge (docs/scale-out.md): consumes the queues of `[[bridge.rabbitmq.consume]]`
/// — declared durable and bound to their patterns on the exchange, unless `declare = false` — and feeds
/// each message into the broker as a confirmed publish would. A message is acknowledged to RabbitMQ only
/// once its event is durable here (or was a duplicate of one that is); one that is not a valid event is
/// rejected (to the queue's dead-letter exchange, if it has one). An event whose `metadata.origin` is this
/// broker is acknowledged and dropped: an event never returns to its origin. One without an origin (from a
/// publisher that is not a Herald broker) gets `metadata.origin = "rabbitmq"`, so this broker's outbound
/// side does not publish it back.
///
/// When the log cannot store an event, the connection is dropped: RabbitMQ hands the unacknowledged
/// messages out again, and dedup by `event_id` drops what was stored twice.
///
/// Its state is confined to the worker's thread (`@unchecked Sendable` for the closures that run there).
final class BridgeInbound: @unchecked Sendable {
    /// `metadata.origin` of events that came from a publisher that named none.
    static let foreignOrigin = HeraldConfiguration.foreignOrigin

    private let settings: HeraldConfiguration.RabbitMQBridge
    private let brokerID: String
    private let broker: Broker
    private let logger: Logger
    private let metrics: BridgeMetrics
    let worker: BridgeWorker

    /// Outcomes from the broker (on the log's writer thread), by connection generation and delivery tag.
    private let settled = Mutex<[(generation: Int, tag: UInt64, outcome: BridgedOutcome)]>([])
    private var generation = 0
    /// Messages handed to the broker on the current connection and not settled yet.
    private var outstanding = 0

    init(
        settings: HeraldConfiguration.RabbitMQBridge, brokerID: String, broker: Broker, logger: Logger,
        metrics: BridgeMetrics
    ) {
        self.settings = settings
        self.brokerID = brokerID
        self.broker = broker
        self.logger = logger
        self.metrics = metrics
        worker = BridgeWorker(direction: "inbound", settings: settings, logger: logger, metrics: metrics)
    }

    func start() {
        worker.start(
            prepare: { [self] connection throws(AMQPError) in try consume(on: connection) },
            serve: { [self] connection throws(AMQPError) in try serve(connection) })
    }

    /// Declares (or checks) and binds every consumed queue, then starts consuming them. All are checked
    /// before the first is consumed: a `declare = false` queue that does not exist closes the channel, and
    /// messages already handed out on another queue would go back with one delivery attempt spent — a
    /// quorum queue's `x-delivery-limit` would dead-letter them, unseen, after a few retries.
    private func consume(on connection: AMQPConnection) throws(AMQPError) {
        for entry in settings.consume {
            if entry.declare {
                try connection.declareQueue(entry.queue)
                for pattern in entry.patterns {
                    try connection.bindQueue(entry.queue, to: settings.exchange, key: pattern)
                }
            } else {
                try connection.declareQueue(entry.queue, passive: true)
            }
        }
        for entry in settings.consume {
            try connection.setPrefetch(entry.prefetch)
            try connection.consume(entry.queue)
        }
    }

    private func serve(_ connection: AMQPConnection) throws(AMQPError) {
        generation += 1
        outstanding = 0
        let current = generation
        // Outcomes of the last connection's messages: their tags mean nothing on this one.
        settled.withLock { $0.removeAll { $0.generation != current } }
        var stopDeadline: ContinuousClock.Instant?
        while true {
            try settle(on: connection)
            if worker.isStopping {
                // Waits a little for what the log is storing; the rest RabbitMQ hands out again.
                let deadline = stopDeadline ?? .now + .seconds(5)
                stopDeadline = deadline
                if outstanding == 0 || ContinuousClock.now >= deadline { return }
                _ = worker.wake.wait(timeout: .now() + .milliseconds(10))
                continue
            }
            guard let message = try connection.nextMessage(timeoutMs: outstanding > 0 ? 5 : 200) else { continue }
            worker.madeProgress()
            try handle(message, on: connection)
        }
    }

    private func handle(_ message: AMQPConnection.Message, on connection: AMQPConnection) throws(AMQPError) {
        var fields: EnvelopeFields
        do throws(EnvelopeError) {
            fields = try message.body.withUnsafeBufferPointer { buffer throws(EnvelopeError) in
                try EnvelopeFields(parsing: buffer, form: .published)
            }
        } catch {
            logger.warning(
                "RabbitMQ bridge rejected a message that is not a Herald event",
                metadata: ["queue": "\(message.queue)", "routing_key": "\(message.routingKey)", "error": "\(error)"])
            metrics.received("invalid")
            try connection.reject(message.deliveryTag, requeue: false)
            return
        }
        if fields.metadata["origin"] == brokerID {
            metrics.received("own")
            try connection.ack(message.deliveryTag)
            return
        }
        if fields.metadata["origin"] == nil { fields.metadata["origin"] = Self.foreignOrigin }
        if fields.eventID == nil, !message.messageID.isEmpty,
            message.messageID.utf8.count <= EnvelopeFields.maximumEventIDBytes
        {
            // A redelivery then keeps its id, and dedup recognises it.
            fields.eventID = message.messageID
        }
        outstanding += 1
        let generation = self.generation
        let tag = message.deliveryTag
        broker.acceptBridged(fields) { [self] outcome in
            settled.withLock { $0.append((generation, tag, outcome)) }
        }
    }

    /// Acknowledges or rejects what the broker settled since the last look.
    private func settle(on connection: AMQPConnection) throws(AMQPError) {
        let current = generation
        let done = settled.withLock { list in
            defer { list.removeAll() }
            return list.filter { $0.generation == current }
        }
        for (_, tag, outcome) in done {
            outstanding -= 1
            switch outcome {
            case .stored:
                metrics.received("stored")
                try connection.ack(tag)
            case .duplicate:
                metrics.received("duplicate")
                try connection.ack(tag)
            case .refused(let reason):
                logger.warning("RabbitMQ bridge rejected an event the broker refused", metadata: ["error": "\(reason)"])
                metrics.received("invalid")
                try connection.reject(tag, requeue: false)
            case .failed(let reason):
                // The broker cannot store (stopping, a failed partition): the backoff keeps growing until it
                // can, instead of starting over because messages arrived.
                worker.wasRefused()
                throw AMQPError("the broker could not store a bridged event: \(reason)")
            }
        }
    }
}
