import Dispatch
import Foundation
import HeraldCore
import HeraldLog
import HeraldProtocol
import Synchronization

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
    /// Accepts an event (PROTOCOL.md §4.3, §4.4). An `event_id` accepted within the dedup window is not
    /// stored or delivered again: the result says `duplicate`, with where the first was stored, and
    /// `whenDurable` is not called. Otherwise the event is sealed — once — and, when its topic matches
    /// `log.persist`, stored in partition `FNV-1a 64(key) mod P` at the offset the log assigns, both of
    /// which the stored envelope carries; then it is published to live subscribers without waiting for the
    /// disk. `whenDurable`, for a stored event only, is called from the log's writer thread once the event
    /// is durable under the fsync policy.
    /// `extraBytes` raises the size limit for an event a bridge brings: the `origin` its sending broker
    /// added to an envelope that fitted there.
    func accept(_ fields: EnvelopeFields, whenDurable: DurabilityCallback? = nil, extraBytes: Int = 0)
        throws(AcceptError) -> AcceptedEvent
    {
        var fields = fields
        // The time is read when the event gets its offset (`store`), so that the envelope's default
        // `timestamp` is the log's time for it (docs/protocol.md).
        fields.applyDefaults(stampingTime: false)
        var accepted: AcceptedEvent?
        let first = try dedup.check(fields.eventID!, now: Self.millisecondsSince1970()) {
            () throws(AcceptError) -> LogPosition? in
            let stored = try store(fields, whenDurable: whenDurable, limit: largestEnvelope + extraBytes)
            accepted = stored
            return stored.stored
        }
        if let first {
            metrics.duplicates.increment()
            fields.applyDefaults()
            return AcceptedEvent(envelope: EventEnvelope(sealing: fields), stored: first.position, duplicate: true)
        }
        metrics.published.increment()
        if fields.eventType == MaintenanceData.eventType { maintain(accepted!.envelope) }
        return accepted!
    }

    /// The wall clock in milliseconds: the same reading the log and the envelopes' timestamps use.
    static func millisecondsSince1970() -> Int64 {
        Timestamp.currentMilliseconds()
    }

    /// Seals, stores (when the topic matches `log.persist`) and publishes an event that is not a duplicate.
    private func store(_ fields: EnvelopeFields, whenDurable: DurabilityCallback?, limit: Int) throws(AcceptError)
        -> AcceptedEvent
    {
        let topic = Topic.of(eventType: fields.eventType, chainID: fields.chainID)
        guard let log, persist.contains(where: { $0.matches(topic) }) else {
            let sealed = EventEnvelope(sealing: fields, topic: topic)  // stamped now, when it has no timestamp
            guard sealed.encodedSize <= limit else { throw .tooLarge(size: sealed.encodedSize, limit: limit) }
            bus.publish(sealed)
            return AcceptedEvent(envelope: sealed, stored: nil)
        }
        let partition = log.partition(forKey: fields.key!)
        var sealed: EventEnvelope?
        let offset: Int64?
        do throws(LogError) {
            // Sealed with its offset inside the append; too large, it is declined and takes no offset. Its JSON
            // is made by the log's writer or a subscriber's loop, whichever needs it first, not here.
            // The log reads the time under the partition's lock with the offset: the default `timestamp` is it.
            offset = try log.append(
                partition: partition,
                record: { offset, time in
                    var stored = fields
                    stored.offset = offset
                    stored.partition = partition
                    if stored.timestamp == nil { stored.timestamp = Timestamp.format(millisecondsSinceEpoch: time) }
                    let envelope = EventEnvelope(sealing: stored, topic: topic)
                    sealed = envelope
                    return envelope.encodedSize <= limit ? .envelope(envelope) : nil
                },
                whenDurable: whenDurable
            )
        } catch {
            throw .storage(error)
        }
        guard let offset, let sealed else {
            let size = sealed?.encodedSize ?? 0
            throw .tooLarge(size: size, limit: limit)
        }
        bus.publish(sealed)
        metrics.stored.increment()
        return AcceptedEvent(envelope: sealed, stored: LogPosition(partition: partition, offset: offset))
    }
}

extension Broker {
    /// Refills the dedup window from the log's records of the last `log.dedup_window_ms`, so that a
    /// publish repeated across a restart is still recognised (PROTOCOL.md §4.3). The partitions are read at
    /// the same time, one per core, each record's `event_id` in place, into a window sized for them
    /// beforehand, a few thousand ids at a time (``DedupWindow/putBack(_:)``); then each shard's expiry
    /// order is sorted (``DedupWindow/finishRebuild()``).
    func rebuildDedupWindow() {
        guard let log, dedup.window > 0 else { return }
        let now = Self.millisecondsSince1970()
        var starts: [Int64] = []
        do throws(LogError) {
            for partition in 0..<log.partitionCount {
                starts.append(try log.offset(partition: partition, atOrAfter: now - dedup.window))
            }
        } catch {
            logger.error("the dedup window could not be rebuilt from the log", metadata: ["error": "\(error)"])
            return
        }
        let started = ContinuousClock.now
        dedup.reserve(starts.enumerated().reduce(0) { $0 + Int(log.bounds(partition: $1.offset).end - $1.element) })
        let failures = Mutex<[LogError]>([])
        let dedup = self.dedup
        let windowStarts = starts
        DispatchQueue.concurrentPerform(iterations: log.partitionCount) { partition in
            var batch = DedupWindow.Recollection()
            do throws(LogError) {
                try log.visit(partition: partition, from: windowStarts[partition]) { offset, timestamp, bytes in
                    EventEnvelope.withEventID(ofStored: bytes) { eventID in
                        dedup.remember(
                            utf8: eventID, position: LogPosition(partition: partition, offset: offset),
                            acceptedAt: timestamp, now: now, in: &batch)
                    }
                    return true
                }
            } catch {
                failures.withLock { $0.append(error) }
            }
            dedup.putBack(&batch)
        }
        let read = ContinuousClock.now
        dedup.finishRebuild()
        logger.info(
            "dedup window rebuilt",
            metadata: [
                "dedup.ids": "\(dedup.count)", "dedup.read": "\(read - started)",
                "dedup.total": "\(ContinuousClock.now - started)",
            ])
        if let error = failures.withLock({ $0.first }) {
            logger.error("the dedup window could not be rebuilt from the log", metadata: ["error": "\(error)"])
        }
    }
}
