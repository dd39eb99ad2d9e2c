import DequeModule
import Dispatch
import HeraldCore
import HeraldLog
import HeraldServer
import Logging

/// The outbound half of the bridge (docs/scale-out.md): a member of the `rabbitmq-bridge` consumer group
/// that publishes every stored event whose topic matches `publish` to the topic exchange, with the topic
/// as routing key, persistent, and acknowledges it to the group — which commits the group's position —
/// only once RabbitMQ has confirmed it. What is unconfirmed when the connection fails is published again,
/// in the same order, on the next connection: at least once, in order per partition.
///
/// Events that came from another broker (`metadata.origin` names another) are not published again, nor
/// the broker's own (`metadata.producer = "herald"`: they describe this node); the ones published carry
/// `metadata.origin` set to this broker's id.
///
/// Its state is confined to the worker's thread (`@unchecked Sendable` for the closures that run there).
final class BridgeOutbound: @unchecked Sendable {
    private struct Message {
        let seq: UInt64
        let routingKey: String
        let body: [UInt8]
        let properties: AMQPConnection.Properties
        /// The delivery tag on the current connection.
        var tag: UInt64 = 0
    }

    private let settings: HeraldConfiguration.RabbitMQBridge
    private let brokerID: String
    private let publishPatterns: [TopicPattern]
    private let group: ConsumerGroup
    private let member: GroupMember
    private let logger: Logger
    private let metrics: BridgeMetrics
    let worker: BridgeWorker

    /// Published and not yet confirmed, in publish order (which is tag order).
    private var inFlight = Deque<Message>()
    /// Tags confirmed one by one ahead of an older unconfirmed one.
    private var confirmedAhead = Set<UInt64>()
    private var nextTag: UInt64 = 0

    init(
        settings: HeraldConfiguration.RabbitMQBridge, brokerID: String, group: ConsumerGroup, member: GroupMember,
        logger: Logger, metrics: BridgeMetrics
    ) {
        self.settings = settings
        self.brokerID = brokerID
        self.publishPatterns = settings.publish.compactMap { try? TopicPattern($0) }
        self.group = group
        self.member = member
        self.logger = logger
        self.metrics = metrics
        worker = BridgeWorker(direction: "outbound", settings: settings, logger: logger, metrics: metrics)
        let wake = worker.wake
        member.onWake { wake.signal() }
    }

    func start() {
        worker.start(
            prepare: { connection throws(AMQPError) in try connection.selectConfirms() },
            serve: { [self] connection throws(AMQPError) in try serve(connection) })
    }

    private func serve(_ connection: AMQPConnection) throws(AMQPError) {
        // What the last connection left unconfirmed goes first, in its order, with new tags.
        nextTag = 0
        confirmedAhead.removeAll()
        for index in inFlight.indices {
            nextTag += 1
            inFlight[index].tag = nextTag
            try publish(inFlight[index], on: connection)
        }
        var lastProgress = DispatchTime.now()
        while true {
            if worker.isStopping {
                try drain(connection)
                return
            }
            let wasEmpty = inFlight.isEmpty
            let took = try takeAndPublish(on: connection)
            if wasEmpty && !inFlight.isEmpty { lastProgress = .now() }
            if inFlight.isEmpty {
                if took == 0 {
                    _ = worker.wake.wait(timeout: .now() + .seconds(1))
                    // Keeps the heartbeat and notices a closed connection while idle.
                    _ = try connection.nextConfirm(timeoutMs: 0)
                }
                continue
            }
            // Wait for a confirm only when there is nothing more to publish right now.
            let hasRoom = inFlight.count < settings.maxInFlight && took > 0
            if try collectConfirms(on: connection, waitMs: hasRoom ? 0 : 100) > 0 {
                lastProgress = .now()
            } else if DispatchTime.now().uptimeNanoseconds - lastProgress.uptimeNanoseconds
                > UInt64(settings.confirmTimeoutMs) * 1_000_000
            {
                logger.warning(
                    "RabbitMQ bridge: no publisher confirm for confirm_timeout_ms (a resource alarm? the network?); connecting again",
                    metadata: ["direction": "outbound", "confirm_timeout_ms": "\(settings.confirmTimeoutMs)"])
                worker.gaveUpStalled()
                throw AMQPError("no publisher confirm for \(settings.confirmTimeoutMs) ms")
            }
        }
    }

    /// Takes what the group has for the bridge, up to the room left, and publishes it; events not to be
    /// published are acknowledged at once. Returns how many deliveries were taken.
    private func takeAndPublish(on connection: AMQPConnection) throws(AMQPError) -> Int {
        let room = settings.maxInFlight - inFlight.count
        guard room > 0 else { return 0 }
        let deliveries: [GroupDelivery]
        do throws(LogError) {
            deliveries = try group.take(member, maximum: room, maximumBytes: 4 << 20)
        } catch {
            logger.error("the RabbitMQ bridge cannot read the log", metadata: ["error": "\(error)"])
            _ = worker.wake.wait(timeout: .now() + .seconds(1))
            return 0
        }
        var skipped: [UInt64] = []
        var taken = 0
        for delivery in deliveries {
            guard var message = message(for: delivery) else {
                skipped.append(delivery.seq)
                continue
            }
            guard message.body.count <= settings.maxMessageBytes else {
                // RabbitMQ would close the channel, and the next connection would publish it again, for ever.
                logger.error(
                    "RabbitMQ bridge: an event is larger than max_message_bytes; it goes to the bridge's dead-letter queue",
                    metadata: [
                        "event_id": "\(message.properties.messageID ?? "-")", "bytes": "\(message.body.count)",
                        "max_message_bytes": "\(settings.maxMessageBytes)",
                    ])
                _ = group.nack(
                    member, seq: delivery.seq, delayMs: nil, deadLetter: true, reason: Self.tooLargeReason)
                continue
            }
            nextTag += 1
            message.tag = nextTag
            inFlight.append(message)
            taken += 1
        }
        if !skipped.isEmpty { _ = group.ack(member, seqs: skipped) }
        metrics.inFlight(inFlight.count)
        // Every message taken is in `inFlight` before the first publish: when one fails, the next connection
        // publishes them all again. (The group has them as delivered, and would give them again only after
        // its `ack_wait_ms`, counting an attempt.)
        for message in inFlight.suffix(taken) { try publish(message, on: connection) }
        return deliveries.count
    }

    /// The `dead_letter_reason` of an event larger than `max_message_bytes`.
    static let tooLargeReason = "too_large_for_rabbitmq"

    /// What is published for a delivery, or `nil` when it is not: another broker's event, or a topic
    /// `publish` does not match.
    private func message(for delivery: GroupDelivery) -> Message? {
        guard let envelope = try? EventEnvelope(json: delivery.bytes, form: .delivered) else {
            logger.error(
                "the RabbitMQ bridge skipped a stored event it cannot read",
                metadata: ["partition": "\(delivery.partition)", "offset": "\(delivery.offset)"])
            return nil
        }
        if let origin = envelope.metadata["origin"], origin != brokerID { return nil }
        // The broker's own events (`node.*`, `module.*`, its `maintenance.*` and limit warnings) describe this
        // node: on another, a `node.shutdown` would tell that broker's modules to exit (docs/scale-out.md).
        if envelope.metadata["producer"] == Broker.serverName { return nil }
        guard publishPatterns.contains(where: { $0.matches(envelope.topic) }) else { return nil }
        var fields = envelope.fields
        fields.offset = nil
        fields.partition = nil
        fields.metadata["origin"] = brokerID
        var properties = AMQPConnection.Properties(
            messageID: envelope.eventID, type: envelope.eventType, appID: brokerID)
        if let chainID = envelope.chainID { properties.headers = [("chain_id", String(chainID))] }
        return Message(
            seq: delivery.seq, routingKey: envelope.topic, body: EventEnvelope(sealing: fields).json,
            properties: properties)
    }

    private func publish(_ message: Message, on connection: AMQPConnection) throws(AMQPError) {
        try connection.publish(
            exchange: settings.exchange, routingKey: message.routingKey, body: message.body,
            properties: message.properties)
    }

    /// Reads the confirms that arrived (waiting up to `waitMs` for the first) and acknowledges the
    /// confirmed events to the group, in publish order. Returns how many were confirmed.
    private func collectConfirms(on connection: AMQPConnection, waitMs: Int) throws(AMQPError) -> Int {
        var confirmed: [UInt64] = []
        // What was confirmed is acknowledged however the reading ends: a connection cut or a nack after a
        // confirm of many would otherwise leave those events in flight in the group for good (its committed
        // position stuck, its room for the bridge shrinking until the bridge publishes nothing).
        defer {
            if !confirmed.isEmpty {
                worker.madeProgress()
                _ = group.ack(member, seqs: confirmed)
                metrics.published.increment(by: Int64(confirmed.count))
                metrics.inFlight(inFlight.count)
            }
        }
        var wait = waitMs
        while let confirm = try connection.nextConfirm(timeoutMs: wait) {
            wait = 0
            guard confirm.ack else {
                // RabbitMQ could not take it (a full queue that rejects publishes): everything unconfirmed goes
                // again on a new connection, after a backoff that keeps growing while it is refused.
                worker.wasRefused()
                throw AMQPError("RabbitMQ refused a message (basic.nack for tag \(confirm.tag))")
            }
            if confirm.multiple {
                while let first = inFlight.first, first.tag <= confirm.tag {
                    confirmed.append(inFlight.removeFirst().seq)
                    confirmedAhead.remove(first.tag)
                }
            } else if inFlight.first?.tag == confirm.tag {
                confirmed.append(inFlight.removeFirst().seq)
            } else {
                confirmedAhead.insert(confirm.tag)
            }
            while let first = inFlight.first, confirmedAhead.remove(first.tag) != nil {
                confirmed.append(inFlight.removeFirst().seq)
            }
        }
        return confirmed.count
    }

    /// On stop: waits up to five seconds for the confirms still due. What stays unconfirmed is published
    /// again after the next start: the group's committed position is before it. (The bridge does not leave
    /// the group, which would count a failed attempt for each such event.)
    private func drain(_ connection: AMQPConnection) throws(AMQPError) {
        let deadline = DispatchTime.now() + .seconds(5)
        while !inFlight.isEmpty && DispatchTime.now() < deadline {
            _ = try collectConfirms(on: connection, waitMs: 100)
        }
    }
}
