import HeraldLog

/// An `event_id` as the dedup window keeps it: the 128-bit SipHash-1-3 of the id's UTF-8 bytes
/// (``SipHash128``, keyed per process), not the id itself. Entries are then plain values:
/// no string is kept alive for the window's two minutes, a lookup compares 16 bytes in the table's own
/// memory, and moving entries while the table grows retains nothing. Two different ids are taken for one
/// only if their 128-bit hashes are equal: about 2⁻¹²⁸ for a pair, so under 10⁻²⁴ for a full window of 12 M ids
/// (two minutes at 100 000 events/s); the hash is seeded per process, so ids cannot be chosen to collide.
/// Ids are compared byte for byte: two that differ only in Unicode normalization are two ids.
struct DedupKey: Hashable {
    /// Picks the slot in a shard's table (its low bits).
    let low: Int
    /// Picks the shard (its low bits): taken from the same bits as the slot, every id of a shard would have
    /// the same last bits of its slot, and use one slot in 16 of its table.
    let high: Int

    init(utf8 id: UnsafeRawBufferPointer) {
        let (first, second) = SipHash128.seeded.hash(id)
        low = Int(truncatingIfNeeded: first)
        high = Int(truncatingIfNeeded: second)
    }

    init(_ id: String) {
        var id = id
        self = id.withUTF8 { DedupKey(utf8: UnsafeRawBufferPointer($0)) }
    }

    init(low: Int, high: Int) {
        self.low = low
        self.high = high
    }
}

/// What the dedup window knows of an accepted event.
struct DedupEntry: Equatable {
    /// Where it was stored; `nil` when its topic is not stored.
    var position: LogPosition?
    /// When it leaves the window, milliseconds since 1970.
    var expires: Int64
}

/// One shard of the dedup window: keys to entries in flat arrays, by open addressing with linear probing
/// (a key's slot is the first free one from `low & mask` on), grown to twice its size when more than three
/// quarters are taken and made smaller when an eighth are (``shrinkIfSparse()``), a removal shifting back
/// the keys after it instead of leaving a mark.
///
/// Beside the slots, one byte per slot says whether it is taken and holds seven more bits of its key's
/// hash, as Abseil's and Rust's Swiss tables do: a probe walks these bytes, so that looking for an id never
/// seen (every publish) reads a line of them instead of a 40-byte slot per step, and reads a slot only when
/// its seven bits match (one in 128 of the others). Why not a `Dictionary`: it keeps keys, values and which
/// slots are taken in three arrays, so an insert into a table far larger than the caches costs up to three
/// cache misses; here one for the bytes and one for the slot.
struct DedupTable {
    private struct Slot {
        var low: Int
        var high: Int
        var offset: Int64
        var expires: Int64
        /// The partition the event was stored in; -1 when it was not stored.
        var partition: Int32

        static let free = Slot(low: 0, high: 0, offset: 0, expires: 0, partition: -1)

        init(low: Int, high: Int, offset: Int64, expires: Int64, partition: Int32) {
            self.low = low
            self.high = high
            self.offset = offset
            self.expires = expires
            self.partition = partition
        }

        init(_ key: DedupKey, _ entry: DedupEntry) {
            self.init(
                low: key.low, high: key.high, offset: entry.position?.offset ?? 0, expires: entry.expires,
                partition: entry.position.map { Int32($0.partition) } ?? -1)
        }

        var entry: DedupEntry {
            DedupEntry(
                position: partition < 0 ? nil : LogPosition(partition: Int(partition), offset: offset),
                expires: expires)
        }
    }

    private var slots: [Slot]
    /// Per slot: 0 when it is free, else ``tag(_:)`` of its key.
    private var tags: [UInt8]
    /// How many keys the table holds.
    private(set) var count = 0

    private var mask: Int { slots.count - 1 }

    /// An empty table of the smallest size (``reserve(_:)`` makes room for many keys at once).
    init() {
        let slotCount = Self.slotCount(for: 0)
        slots = Array(repeating: .free, count: slotCount)
        tags = Array(repeating: 0, count: slotCount)
    }

    /// The slots for `capacity` keys at most three quarters full: a power of two, at least 16.
    private static func slotCount(for capacity: Int) -> Int {
        var count = 16
        while count / 4 * 3 < capacity { count *= 2 }
        return count
    }

    /// A taken slot's byte: the top seven bits of `low` (its low bits pick the slot), and the top bit set.
    private static func tag(_ low: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: UInt(bitPattern: low) >> 57) | 0x80
    }

    /// Makes room for `capacity` keys in all, so that the table does not grow while they are put in.
    mutating func reserve(_ capacity: Int) {
        let wanted = Self.slotCount(for: capacity)
        if wanted > slots.count { rehash(into: wanted) }
    }

    /// Gives room back once at most an eighth of the slots are taken (the window after a burst): the table
    /// is made again at the size these keys would have grown it to, so that its memory follows what the
    /// window holds, not its peak.
    mutating func shrinkIfSparse() {
        guard slots.count > 16, count < slots.count / 8 else { return }
        rehash(into: Self.slotCount(for: count * 2))
    }

    /// How many slots the table has (for tests).
    var slotCount: Int { slots.count }

    /// The entry of `key`, if the table holds it.
    func entry(for key: DedupKey) -> DedupEntry? {
        let (index, found) = find(key)
        return found ? slots[index].entry : nil
    }

    /// The slot that holds `key`, or the free slot where it would go.
    private func find(_ key: DedupKey) -> (index: Int, found: Bool) {
        tags.withUnsafeBufferPointer { tags in
            slots.withUnsafeBufferPointer { slots in Self.find(key, tags: tags, slots: slots) }
        }
    }

    @inline(__always)
    private static func find(_ key: DedupKey, tags: UnsafeBufferPointer<UInt8>, slots: UnsafeBufferPointer<Slot>)
        -> (index: Int, found: Bool)
    {
        let tag = Self.tag(key.low)
        let mask = slots.count - 1
        var index = key.low & mask
        while tags[index] != 0 {
            if tags[index] == tag && slots[index].low == key.low && slots[index].high == key.high {
                return (index, true)
            }
            index = (index + 1) & mask
        }
        return (index, false)
    }

    /// What ``claim(_:now:accept:)`` found.
    enum Claim {
        /// `accept` made this entry, now in the table.
        case accepted(DedupEntry)
        /// The key holds this entry, still in the window at `now`; `accept` was not called.
        case withinWindow(DedupEntry)
    }

    /// Puts the entry `accept` makes under `key`, unless `key` holds an entry still in the window at `now`
    /// (expiring after it). One probe of the table in the common case, a key never seen. A failed `accept`
    /// changes nothing.
    mutating func claim<Failure: Error>(_ key: DedupKey, now: Int64, accept: () throws(Failure) -> DedupEntry)
        throws(Failure) -> Claim
    {
        var (index, found) = find(key)
        if found {
            let current = slots[index].entry
            guard current.expires <= now else { return .withinWindow(current) }
        } else if (count + 1) > slots.count / 4 * 3 {
            rehash(into: slots.count * 2)
            index = find(key).index
        }
        let entry = try accept()
        slots[index] = Slot(key, entry)
        tags[index] = Self.tag(key.low)
        if !found { count += 1 }
        return .accepted(entry)
    }

    /// Removes `key` if the entry it holds expires at `expires` (a later acceptance of the same id is kept).
    mutating func remove(_ key: DedupKey, expiring expires: Int64) {
        let (index, found) = find(key)
        guard found, slots[index].expires == expires else { return }
        tags.withUnsafeMutableBufferPointer { tags in
            slots.withUnsafeMutableBufferPointer { slots in
                let mask = slots.count - 1
                // Shift back each key after the hole that may move into it (its own slot is not between the
                // hole and where it sits), so that every key stays reachable from its own slot without gaps.
                var hole = index
                var next = (hole + 1) & mask
                while tags[next] != 0 {
                    let home = slots[next].low & mask
                    if (next - home) & mask >= (next - hole) & mask {
                        slots[hole] = slots[next]
                        tags[hole] = tags[next]
                        hole = next
                    }
                    next = (next + 1) & mask
                }
                tags[hole] = 0
            }
        }
        count -= 1
    }

    /// Puts a batch of entries (a rebuild's): each under its key, unless the entry already there expires
    /// later (the same id accepted twice, the second time after the first left the window: the later
    /// acceptance stays). In one pass over the table's memory through its buffers: a rebuild puts ten million
    /// ids in, and checking each array's uniqueness per write was a tenth of it.
    mutating func insertBatch(_ entries: [(key: DedupKey, entry: DedupEntry)]) {
        reserve(count + entries.count)
        var added = 0
        tags.withUnsafeMutableBufferPointer { tags in
            slots.withUnsafeMutableBufferPointer { slots in
                for (key, entry) in entries {
                    let (index, found) = Self.find(
                        key, tags: UnsafeBufferPointer(tags), slots: UnsafeBufferPointer(slots))
                    if found {
                        if slots[index].expires > entry.expires { continue }
                    } else {
                        added += 1
                    }
                    slots[index] = Slot(key, entry)
                    tags[index] = Self.tag(key.low)
                }
            }
        }
        count += added
    }

    private mutating func rehash(into slotCount: Int) {
        let (oldSlots, oldTags) = (slots, tags)
        slots = Array(repeating: .free, count: slotCount)
        tags = Array(repeating: 0, count: slotCount)
        tags.withUnsafeMutableBufferPointer { tags in
            slots.withUnsafeMutableBufferPointer { slots in
                let mask = slotCount - 1
                for (slot, tag) in zip(oldSlots, oldTags) where tag != 0 {
                    var index = slot.low & mask
                    while tags[index] != 0 { index = (index + 1) & mask }
                    slots[index] = slot
                    tags[index] = tag
                }
            }
        }
    }
}
