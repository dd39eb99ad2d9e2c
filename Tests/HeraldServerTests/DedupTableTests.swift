import HeraldLog
import Testing

@testable import HeraldServer

/// The dedup window's table against a `Dictionary` doing the same: open addressing, growth, and removal by
/// shifting back must never lose a key or find one that is not there.
@Suite struct DedupTableTests {
    /// A key from a small space whose slots collide on purpose: `low` takes 24 values on both sides of the
    /// table's end (-12 to 11), so runs of taken slots form, wrap around and are cut by removals; `high`
    /// tells keys with one `low` apart.
    private static func key(_ number: Int) -> DedupKey {
        DedupKey(low: number % 24 - 12, high: number)
    }

    @Test func aTableAgreesWithADictionaryThroughInsertsRemovalsAndGrowth() {
        var generator = SplitMix(seed: 0x5EED)
        var table = DedupTable()
        var model: [Int: DedupEntry] = [:]
        for step in 0..<5_000 {
            let number = Int(generator.next() % 96)
            let key = Self.key(number)
            let now = Int64(step)
            switch generator.next() % 4 {
            case 0, 1:
                let entry = DedupEntry(
                    position: step % 3 == 0 ? nil : LogPosition(partition: step % 8, offset: Int64(step)),
                    expires: now + Int64(generator.next() % 50))
                let claim = table.claim(key, now: now) { entry }
                if let current = model[number], current.expires > now {
                    guard case .withinWindow(let first) = claim else {
                        Issue.record("step \(step): \(number) claimed over an entry still in the window")
                        return
                    }
                    #expect(first == current)
                } else {
                    guard case .accepted(let made) = claim else {
                        Issue.record(
                            "step \(step): \(number) refused, the model holds \(String(describing: model[number]))")
                        return
                    }
                    #expect(made == entry)
                    model[number] = entry
                }
            case 2:
                // Removes only the entry that expires then, as eviction does.
                let expires = (model[number]?.expires ?? now) + Int64(generator.next() % 2)
                table.remove(key, expiring: expires)
                if model[number]?.expires == expires { model[number] = nil }
            default:
                let entry = DedupEntry(position: nil, expires: now + Int64(generator.next() % 50))
                table.insertBatch([(key, entry)])
                if (model[number]?.expires ?? .min) <= entry.expires { model[number] = entry }
                // After a burst of removals the table gives room back: made again, it must lose nothing.
                table.shrinkIfSparse()
            }
            #expect(table.count == model.count, "step \(step)")
            for number in 0..<96 where table.entry(for: Self.key(number)) != model[number] {
                Issue.record(
                    "step \(step): key \(number) is \(String(describing: table.entry(for: Self.key(number)))), the model has \(String(describing: model[number]))"
                )
                return
            }
        }
    }

    @Test func removingAnEntryThatExpiresAtAnotherTimeKeepsIt() {
        var table = DedupTable()
        let entry = DedupEntry(position: LogPosition(partition: 2, offset: 9), expires: 100)
        _ = table.claim(Self.key(1), now: 0) { entry }
        table.remove(Self.key(1), expiring: 99)
        #expect(table.entry(for: Self.key(1)) == entry)
        table.remove(Self.key(1), expiring: 100)
        #expect(table.entry(for: Self.key(1)) == nil)
        #expect(table.count == 0)
    }

    @Test func anEntryPastItsExpiryIsClaimedAgainEvenBeforeItIsRemoved() {
        var table = DedupTable()
        _ = table.claim(Self.key(5), now: 0) { DedupEntry(position: nil, expires: 50) }
        var accepted = false
        let claim = table.claim(Self.key(5), now: 50) {
            accepted = true
            return DedupEntry(position: nil, expires: 150)
        }
        #expect(accepted)
        guard case .accepted = claim else {
            Issue.record("an expired entry was taken for a duplicate")
            return
        }
        #expect(table.count == 1)
    }

    @Test func aFailedAcceptLeavesTheTableAsItWas() {
        struct Refused: Error {}
        var table = DedupTable()
        // 12 keys fill 16 slots to three quarters: the 13th makes the table grow before `accept` runs.
        for number in 0..<12 {
            _ = table.claim(Self.key(number + 100), now: 0) { DedupEntry(position: nil, expires: 9) }
        }
        #expect(throws: Refused.self) {
            _ = try table.claim(Self.key(7), now: 0) { () throws(Refused) -> DedupEntry in throw Refused() }
        }
        #expect(table.entry(for: Self.key(7)) == nil)
        #expect(table.count == 12)
        for number in 0..<12 { #expect(table.entry(for: Self.key(number + 100)) != nil) }
    }

    @Test func aBatchIntoALargeTableAgreesWithADictionary() {
        // Keys spread over the whole table, as a rebuild's are, in batches of a few thousand.
        var generator = SplitMix(seed: 0xBA7C4)
        var table = DedupTable()
        var model: [DedupKey: DedupEntry] = [:]
        var keys: [DedupKey] = []
        for batchNumber in 0..<20 {
            var batch: [(key: DedupKey, entry: DedupEntry)] = []
            for index in 0..<3_000 {
                // Now and then a key seen before, in this batch or an earlier one.
                let key =
                    !keys.isEmpty && generator.next() % 8 == 0
                    ? keys[Int(generator.next() % UInt64(keys.count))]
                    : DedupKey(
                        low: Int(truncatingIfNeeded: generator.next()), high: Int(truncatingIfNeeded: generator.next()))
                keys.append(key)
                let entry = DedupEntry(
                    position: LogPosition(partition: index % 8, offset: Int64(batchNumber * 3_000 + index)),
                    expires: Int64(generator.next() % 1_000))
                batch.append((key, entry))
                if (model[key]?.expires ?? .min) <= entry.expires { model[key] = entry }
            }
            table.insertBatch(batch)
        }
        #expect(table.count == model.count)
        let wrong = model.filter { table.entry(for: $0.key) != $0.value }.count
        #expect(wrong == 0)
        // Removing all but a few gives the room back and keeps those few.
        let kept = Array(model.keys.prefix(100))
        for (key, entry) in model where !kept.contains(key) { table.remove(key, expiring: entry.expires) }
        let before = table.slotCount
        table.shrinkIfSparse()
        #expect(table.slotCount < before / 8)
        #expect(table.count == 100)
        for key in kept { #expect(table.entry(for: key) == model[key]) }
    }

    @Test func insertingManyAtOnceKeepsTheLaterOfTwoEntriesForAKey() {
        var table = DedupTable()
        _ = table.claim(Self.key(0), now: 0) { DedupEntry(position: nil, expires: 500) }
        let first: [(key: DedupKey, entry: DedupEntry)] = (0..<1_000).map {
            (Self.key($0), DedupEntry(position: LogPosition(partition: 0, offset: Int64($0)), expires: 100))
        }
        let second: [(key: DedupKey, entry: DedupEntry)] = [
            (Self.key(3), DedupEntry(position: LogPosition(partition: 1, offset: 3), expires: 200)),
            (Self.key(4), DedupEntry(position: LogPosition(partition: 1, offset: 4), expires: 50)),
        ]
        table.insertBatch(first + second)
        #expect(table.count == 1_000)
        #expect(table.entry(for: Self.key(0))?.expires == 500)
        #expect(
            table.entry(for: Self.key(3)) == DedupEntry(position: LogPosition(partition: 1, offset: 3), expires: 200))
        #expect(
            table.entry(for: Self.key(4)) == DedupEntry(position: LogPosition(partition: 0, offset: 4), expires: 100))
        #expect(table.entry(for: Self.key(999))?.position == LogPosition(partition: 0, offset: 999))
    }
}

/// A small seeded generator, so that a failing sequence can be run again.
private struct SplitMix {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
