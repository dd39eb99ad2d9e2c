import Synchronization
import Testing

@testable import HeraldCore

@Suite(.timeLimit(.minutes(3))) struct SubscriptionTests {
    @Test func endingTheLoopRemovesIt() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"])
        bus.publish(numberedEvent(1))
        for await _ in subscription { break }
        #expect(bus.subscriptionCount == 0)
        #expect(bus.publish(numberedEvent(2)).delivered == 0)
    }

    @Test func cancellingAParkedTaskRemovesIt() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "waiter")
        let consumer = Task {
            var count = 0
            for await _ in subscription { count += 1 }
            return count
        }
        await subscription.waitUntilParked()
        consumer.cancel()
        #expect(await consumer.value == 0)
        #expect(bus.subscriptionCount == 0)
    }

    @Test func cancellingATaskStopsItWhileEventsKeepArriving() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "busy", buffer: 1000)
        let consumed = Counter()
        let consumer = Task {
            for await _ in subscription { consumed.increment() }
        }
        let publisher = Task {
            var number = 0
            while !Task.isCancelled {
                bus.publish(numberedEvent(number))
                number += 1
                if number % 64 == 0 { await Task.yield() }
            }
        }
        while consumed.value < 1000 { await Task.yield() }
        consumer.cancel()
        await consumer.value
        #expect(bus.subscriptionCount == 0)
        publisher.cancel()
        await publisher.value
        let statistics = try #require(bus.deliveryStatistics(for: "busy"))
        #expect(statistics.successful == UInt64(consumed.value))
    }

    @Test func aCancelledLoopEndsAtOnceEvenWithEventsInHand() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "quitter", buffer: 100)
        for number in 1...5 { bus.publish(numberedEvent(number)) }
        let consumer = Task {
            var seen: [Int] = []
            for await envelope in subscription {
                seen.append(envelope.number)
                withUnsafeCurrentTask { $0?.cancel() }
                // More events arrive after the cancellation; none of them, nor the rest of the batch, is seen.
                for number in 6...10 { bus.publish(numberedEvent(number)) }
            }
            return seen
        }
        #expect(await consumer.value == [1])
        #expect(bus.subscriptionCount == 0)
        #expect(bus.deliveryStatistics(for: "quitter") == DeliveryStatistics(successful: 1, failed: 9, channelFull: 0))
    }

    @Test func cancelEndsAParkedIterator() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"])
        let consumer = Task { await subscription.first { _ in true } }
        await subscription.waitUntilParked()
        subscription.cancel()
        #expect(await consumer.value == nil)
        #expect(bus.subscriptionCount == 0)
    }

    @Test func breakingOutOfABatchCountsTheRestAsFailed() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "impatient", buffer: 10)
        for number in 1...10 { bus.publish(numberedEvent(number)) }
        var seen: [Int] = []
        for await envelope in subscription {
            seen.append(envelope.number)
            if seen.count == 3 { break }
        }
        #expect(seen == [1, 2, 3])
        #expect(
            bus.deliveryStatistics(for: "impatient") == DeliveryStatistics(successful: 3, failed: 7, channelFull: 0))
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

    @Test func aParkedConsumerIsWokenByAPublish() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"])
        let consumer = Task { await subscription.first { _ in true }?.number }
        await subscription.waitUntilParked()
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

/// A counter shared between a test and the task it watches.
final class Counter: Sendable {
    private let count = Mutex(0)

    var value: Int { count.withLock { $0 } }

    func increment() {
        count.withLock { $0 += 1 }
    }
}
