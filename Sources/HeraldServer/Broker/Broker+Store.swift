import Foundation
import HeraldCore
import HeraldLog
import HeraldProtocol

/// An event the broker accepted: what subscribers get, and where it was stored.
struct AcceptedEvent {
    let envelope: EventEnvelope
    /// `nil` when the topic matches none of `log.persist`, or the broker runs without a log.
    let stored: LogPosition?
    /// The `event_id` was accepted within the dedup window: nothing was stored or delivered, and `stored`
    /// is where the first event was stored.
    var duplicate = false
}

/// Why the broker could not accept an event.
enum AcceptError: Error {
    /// The stored envelope would exceed what a delivery frame may carry.
    case tooLarge(size: Int, limit: Int)
    /// The log refused the append (it failed earlier, or is closed).
    case storage(LogError)
}

extension Broker {
    /// The most the broker's additions to a stored envelope take: `,"offset":` and `,"partition":` with
    /// their largest values.
    private static let storedFieldsAllowance = 48

    /// Accepts an event (PROTOCOL.md §4.4): seals it, stores it when its topic matches `log.persist` —
    /// assigning its partition (`FNV-1a 64(key) mod P`) and offset, which the stored envelope carries —
    /// and publishes it to live subscribers without waiting for the disk. `whenDurable`, for a stored
    /// event only, is called from the log's writer thread once the event is durable under the fsync policy.
    func accept(
        _ fields: EnvelopeFields,
        whenDurable: DurabilityCallback? = nil
    ) throws(AcceptError) -> AcceptedEvent {
        try accept(sealed: EventEnvelope(sealing: fields), whenDurable: whenDurable)
    }

    /// ``accept(_:whenDurable:)`` for an envelope already sealed (the broker's own events). An `event_id`
    /// accepted within the dedup window (PROTOCOL.md §4.3) is not stored or delivered again: the result
    /// says `duplicate` with where the first was stored, and `whenDurable` is not called.
    func accept(
        sealed: EventEnvelope,
        whenDurable: DurabilityCallback? = nil
    ) throws(AcceptError) -> AcceptedEvent {
        var accepted: AcceptedEvent?
        let first = try dedup.check(sealed.eventID, now: Self.millisecondsSince1970()) {
            () throws(AcceptError) -> LogPosition? in
            let stored = try store(sealed, whenDurable: whenDurable)
            accepted = stored
            return stored.stored
        }
        if let first { return AcceptedEvent(envelope: sealed, stored: first.position, duplicate: true) }
        return accepted!
    }

    static func millisecondsSince1970() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// Stores (when the topic matches `log.persist`) and publishes an event that is not a duplicate.
    private func store(_ sealed: EventEnvelope, whenDurable: DurabilityCallback?) throws(AcceptError)
        -> AcceptedEvent
    {
        let limit = configuration.ipc.maxFrame - FrameLength.eventHeaderAllowance
        let topic = Topic.of(eventType: sealed.eventType, chainID: sealed.chainID)
        guard let log, persist.contains(where: { $0.matches(topic) }) else {
            guard sealed.json.count <= limit else { throw .tooLarge(size: sealed.json.count, limit: limit) }
            bus.publish(sealed)
            return AcceptedEvent(envelope: sealed, stored: nil)
        }
        guard sealed.json.count + Self.storedFieldsAllowance <= limit else {
            throw .tooLarge(size: sealed.json.count + Self.storedFieldsAllowance, limit: limit)
        }
        let partition = log.partition(forKey: sealed.key)
        var stored = sealed
        let offset: Int64
        do throws(LogError) {
            offset = try log.append(
                partition: partition,
                timestamp: Self.millisecondsSince1970(),
                encode: { offset in
                    stored = sealed.stored(offset: offset, partition: partition)
                    return stored.json
                },
                whenDurable: whenDurable
            ).offset
        } catch {
            throw .storage(error)
        }
        bus.publish(stored)
        return AcceptedEvent(envelope: stored, stored: LogPosition(partition: partition, offset: offset))
    }
}

extension Broker {
    /// Refills the dedup window from the log's records of the last `log.dedup_window_ms`, so that a
    /// publish repeated across a restart is still recognised (PROTOCOL.md §4.3).
    func rebuildDedupWindow() {
        guard let log, dedup.window > 0 else { return }
        let now = Self.millisecondsSince1970()
        do throws(LogError) {
            for partition in 0..<log.partitionCount {
                var next = try log.offset(partition: partition, atOrAfter: now - dedup.window)
                while true {
                    let records = try log.read(partition: partition, from: next)
                    guard let last = records.last else { break }
                    for record in records {
                        guard let envelope = try? EventEnvelope(json: record.bytes, form: .delivered) else { continue }
                        dedup.remember(
                            envelope.eventID, position: LogPosition(partition: partition, offset: record.offset),
                            acceptedAt: record.timestamp, now: now)
                    }
                    next = last.offset + 1
                }
            }
        } catch {
            logger.error("the dedup window could not be rebuilt from the log", metadata: ["error": "\(error)"])
        }
    }
}
