import DequeModule
import Testing

@testable import HeraldCore

@Suite(.timeLimit(.minutes(3))) struct EventBusStressTests {
    static let publishers = 4
    static let eventsPerPublisher = 25_000
    static var total: Int { publishers * eventsPerPublisher }

    private func publishConcurrently(on bus: EventBus) async {
        await withTaskGroup(of: Void.self) { group in
            for publisher in 0..<Self.publishers {
                group.addTask {
                    for index in 0..<Self.eventsPerPublisher {
                        bus.publish(numberedEvent(publisher * 1_000_000 + index))
                    }
                }
            }
        }
    }

    /// Checks that each publisher's events arrive in the order it published them.
    private func expectPerPublisherOrder(_ numbers: [Int]) {
        var last = [Int](repeating: -1, count: Self.publishers)
        for number in numbers {
            let (publisher, index) = number.quotientAndRemainder(dividingBy: 1_000_000)
            #expect(index > last[publisher], "publisher \(publisher) out of order")
            last[publisher] = index
        }
    }

    @Test func everyEventArrivesExactlyOnceWhenBuffersAllow() async throws {
        let bus = EventBus()
        let subscriptions = try (0..<4).map { index in
            try bus.subscribe(["block.#"], subscriber: "s\(index)", buffer: Self.total)
        }
        let received = await withTaskGroup(of: [Int].self) { group in
            for subscription in subscriptions {
                group.addTask {
                    var numbers: [Int] = []
                    numbers.reserveCapacity(Self.total)
                    for await envelope in subscription {
                        numbers.append(envelope.number)
                        if numbers.count == Self.total { break }
                    }
                    return numbers
                }
            }
            for subscription in subscriptions { await subscription.waitUntilParked() }
            await publishConcurrently(on: bus)
            return await group.reduce(into: []) { $0.append($1) }
        }
        for numbers in received {
            #expect(numbers.count == Self.total)
            #expect(Set(numbers).count == Self.total)
            expectPerPublisherOrder(numbers)
        }
        for index in 0..<4 {
            let statistics = try #require(bus.deliveryStatistics(for: "s\(index)"))
            #expect(statistics == DeliveryStatistics(successful: UInt64(Self.total), failed: 0, channelFull: 0))
        }
    }

    @Test func smallBuffersAccountForEveryEvent() async throws {
        let bus = EventBus()
        let subscriptions = try (0..<3).map { index in
            try bus.subscribe(["#"], subscriber: "small\(index)", buffer: 16, overflow: .dropOldest)
        }
        let received = await withTaskGroup(of: (name: String, seqs: [UInt64], numbers: [Int]).self) { group in
            for subscription in subscriptions {
                group.addTask {
                    var seqs: [UInt64] = []
                    var numbers: [Int] = []
                    var batch = Deque<SubscriptionDelivery>()
                    // Under drop-oldest the newest event is always queued, so the last seq always arrives.
                    while seqs.last != UInt64(Self.total), await subscription.nextBatch(into: &batch) {
                        subscription.recordDelivered(batch.count)
                        seqs.append(contentsOf: batch.map(\.seq))
                        numbers.append(contentsOf: batch.map(\.envelope.number))
                    }
                    return (subscription.subscriber, seqs, numbers)
                }
            }
            // Every consumer is running (parked on its empty queue) before the first publish.
            for subscription in subscriptions { await subscription.waitUntilParked() }
            await publishConcurrently(on: bus)
            return await group.reduce(into: []) { $0.append($1) }
        }
        for (name, seqs, numbers) in received {
            #expect(seqs.last == UInt64(Self.total))
            #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 < $1 }, "seq must increase")
            expectPerPublisherOrder(numbers)
            let statistics = try #require(bus.deliveryStatistics(for: name))
            #expect(statistics.successful == UInt64(seqs.count))
            // Every matched event was either delivered or counted as dropped, exactly once.
            #expect(statistics.successful + statistics.channelFull == UInt64(Self.total))
            #expect(statistics.failed == 0)
        }
    }

    @Test func subscribingAndCancellingWhilePublishingIsSafe() async throws {
        let bus = EventBus()
        let rounds = 300
        let steady = try bus.subscribe(["block.new.#"], subscriber: "steady", buffer: Self.total)
        let churn = Task {
            var delivered = 0
            for round in 0..<rounds {
                let subscription = try bus.subscribe(["block.tick.#"], subscriber: "churn\(round % 3)", buffer: 8)
                // Its own tick guarantees the subscription has something to take.
                bus.publish(numberedEvent(0, type: "block.tick"))
                delivered += await subscription.takeQueued().count
                subscription.cancel()
            }
            return delivered
        }
        await publishConcurrently(on: bus)
        let delivered = try await churn.value
        #expect(delivered == rounds)
        let churned = (0..<3).compactMap { bus.deliveryStatistics(for: "churn\($0)") }
        #expect(churned.map(\.successful).reduce(0, +) == UInt64(rounds))
        #expect(churned.allSatisfy { $0.failed == 0 && $0.channelFull == 0 })
        #expect(bus.subscriptionCount == 1)
        #expect(await steady.takeQueued().count == Self.total)
        #expect(bus.deliveryStatistics(for: "steady")?.channelFull == 0)
    }
}
