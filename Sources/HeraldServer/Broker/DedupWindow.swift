import DequeModule
import Dispatch
import HeraldLog
import Synchronization

/// The deduplication window of PROTOCOL.md §4.3: the `event_id`s accepted in the last `window`
/// milliseconds, with where each event was stored. Sharded by `event_id` so that publishers on different
/// event loops rarely share a lock; within a shard, checking an id and accepting its event happen under
/// one lock, so two copies published at once cannot both be accepted.
final class DedupWindow: Sendable {
    typealias Entry = DedupEntry

    private struct Shard {
        var table = DedupTable()
        /// Ids in the order they expire (acceptance order; the window is the same for all).
        var order = Deque<(id: DedupKey, expires: Int64)>()

        /// Forgets the ids whose time is up: one probe of the table each.
        mutating func evict(now: Int64) {
            while let first = order.first, first.expires <= now {
                order.removeFirst()
                // A later acceptance of the same id (after it expired) has its own, later place in `order`.
                table.remove(first.id, expiring: first.expires)
            }
        }
    }

    /// The window's length in milliseconds; 0 turns deduplication off.
    let window: Int64
    private let shards: [ShardLock]

    private final class ShardLock: Sendable {
        let mutex = Mutex(Shard())
    }

    /// A window of `windowMilliseconds` in `shardCount` shards (a power of two; tests use one).
    init(windowMilliseconds: Int, shardCount: Int = 16) {
        precondition(shardCount > 0 && shardCount & (shardCount - 1) == 0, "a power of two")
        window = Int64(windowMilliseconds)
        shards = (0..<shardCount).map { _ in ShardLock() }
    }

    private func shardIndex(_ key: DedupKey) -> Int {
        key.high & (shards.count - 1)
    }

    /// Runs `accept` unless `eventID` was accepted within the window, in which case it returns what the
    /// window knows of the first event. `accept` returns where it stored the event (or `nil`); when it
    /// throws, the window is left as it was.
    func check<Failure: Error>(
        _ eventID: String, now: Int64, accept: () throws(Failure) -> LogPosition?
    ) throws(Failure) -> Entry? {
        guard window > 0 else {
            _ = try accept()
            return nil
        }
        let key = DedupKey(eventID)
        let window = self.window
        return try shards[shardIndex(key)].mutex.withLock { shard throws(Failure) -> Entry? in
            shard.evict(now: now)
            // An entry past its expiry that is not evicted yet (put back out of order) is not a duplicate.
            let claim = try shard.table.claim(key, now: now) { () throws(Failure) -> Entry in
                Entry(position: try accept(), expires: now + window)
            }
            switch claim {
            case .accepted(let entry):
                shard.order.append((key, entry.expires))
                return nil
            case .withinWindow(let first):
                return first
            }
        }
    }

    /// Ids read back from the log and not yet put in the window, by shard (``putBack(_:)``).
    struct Recollection {
        fileprivate var byShard: [[(key: DedupKey, entry: Entry)]] = []
    }

    /// A recollection with room for about `count` ids, so that gathering them does not copy them again and
    /// again as it grows.
    func recollection(expecting count: Int) -> Recollection {
        var batch = Recollection()
        batch.byShard = (0..<shards.count).map { _ in
            var entries: [(key: DedupKey, entry: Entry)] = []
            entries.reserveCapacity(count / shards.count + count / (4 * shards.count) + 16)
            return entries
        }
        return batch
    }

    /// Gathers in `batch` an event accepted at `acceptedAt` (rebuilding the window from the log at start),
    /// with its id as UTF-8 bytes (read in place from a record); nothing when its time in the window is up.
    func remember(
        utf8 eventID: UnsafeRawBufferPointer, position: LogPosition?, acceptedAt: Int64, now: Int64,
        in batch: inout Recollection
    ) {
        guard window > 0, acceptedAt + window > now else { return }
        let key = DedupKey(utf8: eventID)
        if batch.byShard.isEmpty { batch.byShard = Array(repeating: [], count: shards.count) }
        batch.byShard[shardIndex(key)].append((key, Entry(position: position, expires: acceptedAt + window)))
    }

    /// ``remember(utf8:position:acceptedAt:now:in:)`` with the id as a string.
    func remember(
        _ eventID: String, position: LogPosition?, acceptedAt: Int64, now: Int64, in batch: inout Recollection
    ) {
        var eventID = eventID
        eventID.withUTF8 {
            remember(utf8: UnsafeRawBufferPointer($0), position: position, acceptedAt: acceptedAt, now: now, in: &batch)
        }
    }

    /// Puts the ids gathered by a rebuild in the window, the shards at the same time (one per core): each
    /// shard's table is filled in the order of its slots (``DedupTable/insertAll(_:)``), and its expiry
    /// order, which eviction relies on, is sorted once (partitions read at the same time give ids back out
    /// of acceptance order). Of two entries for one id, the one accepted later stays.
    func putBack(_ recollections: [Recollection]) {
        DispatchQueue.concurrentPerform(iterations: shards.count) { index in
            let batches = recollections.compactMap { $0.byShard.isEmpty ? nil : $0.byShard[index] }
            guard batches.contains(where: { !$0.isEmpty }) else { return }
            shards[index].mutex.withLock { shard in
                var order = Array(shard.order)
                order.reserveCapacity(order.count + batches.reduce(0) { $0 + $1.count })
                for batch in batches {
                    for (key, entry) in batch { order.append((key, entry.expires)) }
                }
                order.sort { $0.expires < $1.expires }
                shard.order = Deque(order)
                shard.table.insertAll(batches)
            }
        }
    }

    /// How many ids the window holds (for tests).
    var count: Int { shards.reduce(0) { $0 + $1.mutex.withLock { $0.table.count } } }
}
