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

        /// The most ids `order` held since its storage was last made: a deque keeps the room of its peak.
        var orderPeak = 0

        /// Forgets the ids whose time is up: one probe of the table each. After a burst, gives back the room
        /// the table and the queue took for it once they hold a fraction of that.
        mutating func evict(now: Int64) {
            guard let first = order.first, first.expires <= now else { return }
            orderPeak = max(orderPeak, order.count)
            while let first = order.first, first.expires <= now {
                order.removeFirst()
                // A later acceptance of the same id (after it expired) has its own, later place in `order`.
                table.remove(first.id, expiring: first.expires)
            }
            table.shrinkIfSparse()
            if orderPeak > 4096, order.count < orderPeak / 8 {
                order = Deque(order)
                orderPeak = order.count
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

    /// Makes room for `count` ids before a rebuild, so that the shards do not grow (and rehash) step by step.
    func reserve(_ count: Int) {
        let perShard = count / shards.count + count / (8 * shards.count) + 16
        for shard in shards {
            shard.mutex.withLock { shard in
                shard.table.reserve(shard.table.count + perShard)
                shard.order.reserveCapacity(shard.order.count + perShard)
            }
        }
    }

    /// Ids read back from the log and not yet put in the window, by shard: a rebuild puts them in a few
    /// thousand at a time (``remember(utf8:position:acceptedAt:now:in:)``, ``putBack(_:)``), each shard's
    /// share under one taking of its lock.
    struct Recollection {
        fileprivate var byShard: [[(key: DedupKey, entry: Entry)]] = []
        fileprivate var count = 0
    }

    /// Gathers in `batch` an event accepted at `acceptedAt` (rebuilding the window from the log at start),
    /// with its id as UTF-8 bytes (read in place from a record); nothing when its time in the window is up.
    /// A full batch is put in the window.
    func remember(
        utf8 eventID: UnsafeRawBufferPointer, position: LogPosition?, acceptedAt: Int64, now: Int64,
        in batch: inout Recollection
    ) {
        guard window > 0, acceptedAt + window > now else { return }
        let key = DedupKey(utf8: eventID)
        if batch.byShard.isEmpty { batch.byShard = Array(repeating: [], count: shards.count) }
        batch.byShard[shardIndex(key)].append((key, Entry(position: position, expires: acceptedAt + window)))
        batch.count += 1
        if batch.count >= 4096 { putBack(&batch) }
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

    /// Puts the ids gathered in `batch` in the window and empties it; ``finishRebuild()`` follows the last
    /// batch. Of two entries for one id, the one accepted later stays.
    func putBack(_ batch: inout Recollection) {
        for (index, entries) in batch.byShard.enumerated() where !entries.isEmpty {
            shards[index].mutex.withLock { shard in
                for (key, entry) in entries { shard.order.append((key, entry.expires)) }
                shard.table.insertBatch(entries)
            }
            batch.byShard[index].removeAll(keepingCapacity: true)
        }
        batch.count = 0
    }

    /// Ends a rebuild: partitions read at the same time give ids back out of their acceptance order, so each
    /// shard's expiry order, which eviction relies on, is sorted once, the shards at the same time. Sorted
    /// where it lies: a deque not wrapped around its buffer (as at start) is one piece of memory.
    func finishRebuild() {
        DispatchQueue.concurrentPerform(iterations: shards.count) { index in
            shards[index].mutex.withLock { shard in shard.order.sort { $0.expires < $1.expires } }
        }
    }

    /// How many slots the shards' tables have (for tests).
    var slotCount: Int { shards.reduce(0) { $0 + $1.mutex.withLock { $0.table.slotCount } } }

    /// How many ids the window holds (for tests).
    var count: Int { shards.reduce(0) { $0 + $1.mutex.withLock { $0.table.count } } }
}
