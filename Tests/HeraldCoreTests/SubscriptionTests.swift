import Testing

@testable import HeraldCore

@Suite struct SubscriptionTests {
    @Test func endingTheLoopRemovesIt() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"])
        bus.publish(numberedEvent(1))
        for await _ in subscription { break }
        #expect(bus.subscriptionCount == 0)
        #expect(bus.publish(numberedEvent(2)).delivered == 0)
    }

    @Test func cancellingTheTaskRemovesIt() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "waiter")
        let consumer = Task {
            var count = 0
            for await _ in subscription { count += 1 }
            return count
        }
        bus.publish(numberedEvent(1))
        consumer.cancel()
        let consumed = await consumer.value
        #expect(consumed <= 1)
        #expect(bus.subscriptionCount == 0)
    }

    @Test func cancelEndsAWaitingIterator() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"])
        let consumer = Task { await subscription.first { _ in true } }
        subscription.cancel()
        #expect(await consumer.value == nil)
        #expect(bus.subscriptionCount == 0)
    }

    @Test func cancelCountsQueuedEventsAsFailed() throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "gone", buffer: 10)
        for number in 1...4 { bus.publish(numberedEvent(number)) }
        subscription.cancel()
        subscription.cancel()
        #expect(bus.deliveryStatistics(for: "gone") == DeliveryStatistics(successful: 0, failed: 4, channelFull: 0))
        #expect(bus.publish(numberedEvent(5)).delivered == 0)
    }

    @Test func droppingTheLastReferenceRemovesIt() throws {
        let bus = EventBus()
        do {
            let subscription = try bus.subscribe(["#"])
            #expect(bus.subscriptionCount == 1)
            _ = subscription.id
        }
        #expect(bus.subscriptionCount == 0)
    }

    @Test func aWaitingConsumerIsWokenByAPublish() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"])
        let consumer = Task { await subscription.first { _ in true }?.number }
        // Publish until the consumer has one; it may or may not be parked yet, and both paths must work.
        bus.publish(numberedEvent(7))
        #expect(await consumer.value == 7)
    }

    @Test func exposesItsIdentity() throws {
        let bus = EventBus()
        let first = try bus.subscribe(["block.#", "#.138"], subscriber: "indexer")
        let second = try bus.subscribe(["#"])
        #expect(first.subscriber == "indexer")
        #expect(second.subscriber == EventBus.anonymousSubscriber)
        #expect(first.patterns.map(\.text) == ["block.#", "#.138"])
        #expect(first.id != second.id)
    }
}
