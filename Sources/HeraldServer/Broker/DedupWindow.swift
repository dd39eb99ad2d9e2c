import DequeModule
import HeraldLog
import Synchronization

/// The deduplication window of PROTOCOL.md §4.3: the `event_id`s accepted in the last `window`
/// milliseconds, with where each event was stored. Sharded by `event_id` so that publishers on different
/// event loops rarely share a lock; within a shard, checking an id and accepting its event happen under
/// one lock, so two copies published at once cannot both be accepted.
final class DedupWindow: Sendable {
    /// What the window knows of an accepted event.
    struct Entry: Equatable {
        /// Where it was stored; `nil` when its topic is not stored.
        var position: LogPosition?
        /// When it leaves the window, milliseconds since 1970.
        var expires: Int64
    }

    /// An id as the window keeps it: 128 bits of Swift's seeded SipHash of the id (two hashes of it, told
    /// apart by a leading byte), not the id itself. Entries are then plain values: no string is kept alive
    /// for the window's two minutes, a lookup compares 16 bytes in the table's own memory instead of
    /// following a pointer to the string's, and moving entries while the table grows retains nothing.
    /// Two different ids are taken for one only if both 64-bit hashes collide: about 2⁻¹²⁸ for a pair, so
    /// under 10⁻²⁴ for a full window of 12 M ids (two minutes at 100 000 events/s); the hash is seeded per
    /// process, so ids cannot be chosen to collide. The table's bucket comes from `low`'s low bits, the
    /// shard from `high`'s: taken from the same bits, every id of a shard would have the same last bits of its
    /// bucket, and use one bucket in 16 of its table.
    private struct Key: Hashable {
        let low: Int
        let high: Int

        init(_ id: String) {
            var first = Hasher()
            first.combine(id)
            low = first.finalize()
            var second = Hasher()
            second.combine(0x5A as UInt8)
            second.combine(id)
            high = second.finalize()
        }

        static func == (left: Key, right: Key) -> Bool { left.low == right.low && left.high == right.high }
        func hash(into hasher: inout Hasher) { hasher.combine(low) }

        /// What a dictionary asks for its buckets: the hash already made, mixed with the dictionary's seed,
        /// instead of a second SipHash over it (which `hash(into:)` alone would cost on every lookup, insert
        /// and rehash). `low` is already a seeded SipHash of the id, so its low bits are as good as any.
        /// (`_rawHashValue(seed:)` is an underscored but public requirement of `Hashable`, with
        /// `hash(into:)` as its default.)
        func _rawHashValue(seed: Int) -> Int { low ^ seed }
    }

    private struct Shard {
        var entries: [Key: Entry] = [:]
        /// Ids in the order they expire (acceptance order; the window is the same for all).
        var order = Deque<(id: Key, expires: Int64)>()

        /// Forgets the ids whose time is up: one probe of the table each.
        mutating func evict(now: Int64) {
            while let first = order.first, first.expires <= now {
                order.removeFirst()
                // A later acceptance of the same id (after it expired) has its own, later place in `order`.
                if let index = entries.index(forKey: first.id), entries.values[index].expires == first.expires {
                    entries.remove(at: index)
                }
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

    private func shard(_ key: Key) -> ShardLock {
        shards[key.high & (shards.count - 1)]
    }

    /// Runs `accept` unless `eventID` was accepted within the window, in which case it returns what the
    /// window knows of the first event. `accept` returns where it stored the event (or `nil`).
    func check<Failure: Error>(
        _ eventID: String, now: Int64, accept: () throws(Failure) -> LogPosition?
    ) throws(Failure) -> Entry? {
        guard window > 0 else {
            _ = try accept()
            return nil
        }
        let key = Key(eventID)
        return try shard(key).mutex.withLock { shard throws(Failure) -> Entry? in
            shard.evict(now: now)
            // One probe of the table finds the id or makes its place, the common case for an id never seen. Only a
            // failed `accept` probes again, to take the place back: a refused event leaves nothing behind.
            let claim: Claim
            do throws(Failure) {
                claim = try Self.claim(&shard.entries[key, default: Self.unclaimed], now: now) {
                    () throws(Failure) -> Entry in Entry(position: try accept(), expires: now + window)
                }
            } catch {
                if shard.entries[key] == Self.unclaimed { shard.entries[key] = nil }
                throw error
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

    /// A place in the table made for an id not accepted yet: expired, so that it is never taken for one.
    private static let unclaimed = Entry(position: nil, expires: .min)

    private enum Claim {
        case accepted(Entry)
        case withinWindow(Entry)
    }

    /// Fills `place` with what `accept` makes, unless it holds an id still in the window at `now`. A failed
    /// `accept` leaves it as it was.
    private static func claim<Failure: Error>(
        _ place: inout Entry, now: Int64, accept: () throws(Failure) -> Entry
    ) throws(Failure) -> Claim {
        guard place.expires <= now else { return .withinWindow(place) }
        place = try accept()
        return .accepted(place)
    }

    /// Makes room for `count` ids before a rebuild, so that the shards do not grow (and rehash) step by step.
    func reserve(_ count: Int) {
        let perShard = count / shards.count + count / (4 * shards.count) + 16
        for shard in shards {
            shard.mutex.withLock { shard in
                shard.entries.reserveCapacity(perShard)
                shard.order.reserveCapacity(perShard)
            }
        }
    }

    /// Ends a rebuild: ``remember(_:position:acceptedAt:now:)`` is called partition by partition (or for
    /// several partitions at once), so each shard's ids are put back in the order they expire, which
    /// eviction relies on.
    func finishRebuild() {
        for shard in shards {
            shard.mutex.withLock { shard in
                var order = Array(shard.order)
                order.sort { $0.expires < $1.expires }
                shard.order = Deque(order)
            }
        }
    }

    /// Puts an event accepted at `acceptedAt` back in the window (rebuilding it from the log at start);
    /// ``finishRebuild()`` follows the last one.
    func remember(_ eventID: String, position: LogPosition?, acceptedAt: Int64, now: Int64) {
        guard window > 0, acceptedAt + window > now else { return }
        let key = Key(eventID)
        shard(key).mutex.withLock { shard in
            let entry = Entry(position: position, expires: acceptedAt + window)
            shard.entries[key] = entry
            shard.order.append((key, entry.expires))
        }
    }

    /// How many ids the window holds (for tests).
    var count: Int { shards.reduce(0) { $0 + $1.mutex.withLock { $0.entries.count } } }
}
