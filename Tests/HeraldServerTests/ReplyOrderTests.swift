import Testing

@testable import HeraldServer

/// A connection's replies in request order (``ReplyOrder``), whatever order they become known in.
@Suite struct ReplyOrderTests {
    /// Drains `order`, returning what it wrote (one string per write) and recording actions in `log`.
    private func drained(_ order: ReplyOrder) -> [String] {
        var writes: [String] = []
        order.drain { writes.append(String(decoding: $0, as: UTF8.self)) }
        return writes
    }

    @Test func withNothingReservedRepliesAndActionsAreNotHeld() {
        let order = ReplyOrder()
        #expect(!order.isHolding)
        var ran = false
        order.then { ran = true }
        #expect(ran)
        #expect(drained(order).isEmpty)
    }

    @Test func repliesAfterASlotWaitForItAndLaterSlotsWaitForEarlierOnes() {
        let order = ReplyOrder()
        let first = order.reserve()
        order.hold(Array("ping;".utf8))
        let second = order.reserve()
        order.hold(Array("stats;".utf8))
        #expect(order.isHolding)
        // The second reply is known first: nothing may pass the first.
        order.fill(second, with: Array("ok2;".utf8))
        #expect(drained(order).isEmpty)
        order.fill(first, with: Array("ok1;".utf8))
        #expect(drained(order) == ["ok1;ping;ok2;stats;"])
        #expect(!order.isHolding)
    }

    @Test func actionsRunAfterTheRepliesBeforeThemAreWritten() {
        let order = ReplyOrder()
        let slot = order.reserve()
        var events: [String] = []
        order.hold(Array("subscribed;".utf8))
        order.then { events.append("deliveries start") }
        order.hold(Array("bye;".utf8))
        order.then { events.append("close") }
        #expect(events.isEmpty)
        order.fill(slot, with: Array("ok;".utf8))
        var writes: [String] = []
        order.drain { bytes in
            writes.append(String(decoding: bytes, as: UTF8.self))
            events.append("write")
        }
        #expect(writes == ["ok;subscribed;", "bye;"])
        #expect(events == ["write", "deliveries start", "write", "close"])
    }

    @Test func aSlotGivenBackHoldsNothing() {
        let order = ReplyOrder()
        let slot = order.reserve()
        order.cancel(slot)
        #expect(!order.isHolding)
        var ran = false
        order.then { ran = true }
        #expect(ran)
    }
}
