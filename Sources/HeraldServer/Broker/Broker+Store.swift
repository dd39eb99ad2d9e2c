import Foundation
import HeraldCore
import HeraldLog
import HeraldProtocol

/// An event the broker accepted: what subscribers get, and where it was stored.
struct AcceptedEvent {
    let envelope: EventEnvelope
    /// `nil` when the topic matches none of `log.persist`, or the broker runs without a log.
    let stored: (offset: Int64, partition: Int)?
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

    /// ``accept(_:whenDurable:)`` for an envelope already sealed (the broker's own events).
    func accept(
        sealed: EventEnvelope,
        whenDurable: DurabilityCallback? = nil
    ) throws(AcceptError) -> AcceptedEvent {
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
                timestamp: Int64(Date().timeIntervalSince1970 * 1000),
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
        return AcceptedEvent(envelope: stored, stored: (offset, partition))
    }
}
