import HeraldCore
import Synchronization

/// A group's dead-letter queue (PROTOCOL.md §4.2): the events it gave up on, each with
/// `metadata.dead_letter_reason`, `metadata.attempts` and `metadata.original_offset` (and
/// `original_partition`) added, kept in a one-partition durable log of their own under the group's
/// directory with fsync `always`. The log is opened on the first dead letter, or at start if it exists.
/// Replaying or purging dead letters moves the group's `deadLettersFrom` past them (``ConsumerGroup``); once
/// that is on disk, the segments holding only such records are deleted (``discard(before:)``). Segments are
/// 1 MiB, so at most about that much stays after a purge.
public final class DeadLetterQueue: Sendable {
    let directory: String
    private let log = StateLock<DurableLog?>(nil)
    /// Set by ``close()``: nothing opens the queue again (its group may be deleted, its directory gone).
    private let closed = StateLock(false)

    init(directory: String) throws(LogError) {
        self.directory = directory
        if LogFile.exists(directory) { _ = try opened() }
    }

    private func opened() throws(LogError) -> DurableLog {
        let result = log.withLock { log -> Result<DurableLog, LogError> in
            if let log { return .success(log) }
            // Not made again after the close: a dead letter that comes after its group was deleted would make
            // the deleted group's directory again.
            if closed.withLock({ $0 }) { return .failure(.closed) }
            do throws(LogError) {
                let opened = try DurableLog(
                    configuration: LogConfiguration(
                        directory: directory, partitions: 1, fsync: .always, segmentBytes: Self.segmentBytes))
                log = opened
                return .success(opened)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Appends a dead letter; `whenDurable` is called once it is on disk.
    func append(_ bytes: [UInt8], timestamp: Int64, whenDurable: @escaping DurabilityCallback) throws(LogError) {
        _ = try opened().append(partition: 0, timestamp: timestamp, encode: { _ in bytes }, whenDurable: whenDurable)
    }

    /// The offsets of the dead letters on disk: from the first to the next one appended. The group counts
    /// only those from its `deadLettersFrom` on (the others were replayed or purged).
    var bounds: (start: Int64, end: Int64) {
        guard let log = log.withLock({ $0 }) else { return (0, 0) }
        return log.bounds(partition: 0)
    }

    /// Dead letters from `offset` on, oldest first.
    func read(from offset: Int64, maximumRecords: Int = 100) throws(LogError) -> [StoredRecord] {
        guard let log = log.withLock({ $0 }) else { return [] }
        return try log.read(partition: 0, from: offset, maximumRecords: maximumRecords)
    }

    /// Deletes the segments whose every dead letter is before `offset` (replayed or purged, and the group's
    /// state saying so on disk). Returns the segments and bytes deleted.
    @discardableResult
    func discard(before offset: Int64) throws(LogError) -> (segments: Int, bytes: Int) {
        guard let log = log.withLock({ $0 }) else { return (0, 0) }
        return try log.deleteSegments(partition: 0, before: offset)
    }

    /// The size at which the queue's log starts a new segment: the unit in which space is given back.
    static let segmentBytes = 1 << 20

    func close() {
        log.withLock { log in
            closed.withLock { $0 = true }
            return log
        }?.close()
    }
}
