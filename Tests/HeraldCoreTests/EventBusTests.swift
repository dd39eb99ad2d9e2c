import Testing

@testable import HeraldCore

@Suite(.timeLimit(.minutes(3))) struct EventBusTests {
    // MARK: Routing

    @Test func deliversToMatchingSubscriptionsOnly() async throws {
        let bus = EventBus()
        let blocks = try bus.subscribe(["block.new.*"], subscriber: "indexer")
        let chain138 = try bus.subscribe(["#.138"], subscriber: "explorer")
        let transactions = try bus.subscribe(["transaction.#"], subscriber: "mempool")
        #expect(bus.publish(numberedEvent(1, chainID: 138)) == PublishResult(delivered: 2, dropped: 0))
        #expect(bus.publish(numberedEvent(2, chainID: 1)) == PublishResult(delivered: 1, dropped: 0))
        #expect(bus.publish(numberedEvent(3, chainID: nil)) == PublishResult())
        #expect(await blocks.takeQueued().map(\.envelope.number) == [1, 2])
        #expect(await chain138.takeQueued().map(\.envelope.number) == [1])
        _ = transactions
    }

    @Test func overlappingPatternsOfOneSubscriptionDeliverOnce() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["block.#", "#.138", "block.new.138"])
        #expect(bus.publish(numberedEvent(1)).delivered == 1)
        #expect(await subscription.takeQueued().map(\.seq) == [1])
    }

    @Test func twoSubscriptionsOfOneSubscriberEachGetTheEvent() async throws {
        let bus = EventBus()
        let first = try bus.subscribe(["block.#"], subscriber: "indexer")
        let second = try bus.subscribe(["#"], subscriber: "indexer")
        #expect(bus.publish(numberedEvent(1)).delivered == 2)
        #expect(await first.takeQueued().count == 1)
        #expect(await second.takeQueued().count == 1)
        #expect(bus.deliveryStatistics(for: "indexer") == DeliveryStatistics(successful: 2))
    }

    @Test func routeCacheFollowsSubscriptionChanges() async throws {
        let bus = EventBus()
        #expect(bus.publish(numberedEvent(1)).delivered == 0)
        let subscription = try bus.subscribe(["block.new.138"])
        #expect(bus.publish(numberedEvent(2)).delivered == 1)
        let other = try bus.subscribe(["block.#"])
        #expect(bus.publish(numberedEvent(3)).delivered == 2)
        subscription.cancel()
        #expect(bus.publish(numberedEvent(4)).delivered == 1)
        other.cancel()
        #expect(bus.publish(numberedEvent(5)).delivered == 0)
    }

    @Test func filterSelectsBeforeQueueing() async throws {
        let bus = EventBus()
        let even = try bus.subscribe(["#"], subscriber: "even") { $0.number % 2 == 0 }
        for number in 1...6 { bus.publish(numberedEvent(number)) }
        let taken = await even.takeQueued()
        #expect(taken.map(\.envelope.number) == [2, 4, 6])
        // Filtered-out events are not matches: no sequence gap.
        #expect(taken.map(\.seq) == [1, 2, 3])
    }

    // MARK: Ordering

    @Test func deliversInPublishOrder() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], buffer: 10_000)
        let count = 10_000
        let consumer = Task {
            var numbers: [Int] = []
            for await envelope in subscription {
                numbers.append(envelope.number)
                if numbers.count == count { break }
            }
            return numbers
        }
        for number in 0..<count { bus.publish(numberedEvent(number)) }
        #expect(await consumer.value == Array(0..<count))
    }

    // MARK: Overflow (PROTOCOL.md §4.1)

    @Test func dropNewestKeepsTheQueueAndDropsTheNewEvent() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "slow", buffer: 3, overflow: .dropNewest)
        let results = (1...5).map { bus.publish(numberedEvent($0)) }
        #expect(results.map(\.delivered) == [1, 1, 1, 0, 0])
        #expect(results.map(\.dropped) == [0, 0, 0, 1, 1])
        let taken = await subscription.takeQueued()
        #expect(taken.map(\.envelope.number) == [1, 2, 3])
        #expect(taken.map(\.seq) == [1, 2, 3])
        bus.publish(numberedEvent(6))
        // seq counts the two dropped events: the gap tells the subscriber it missed two.
        #expect(await subscription.takeQueued().map(\.seq) == [6])
        #expect(bus.deliveryStatistics(for: "slow") == DeliveryStatistics(successful: 4, failed: 0, channelFull: 2))
    }

    @Test func dropOldestEvictsToMakeRoom() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "slow", buffer: 3, overflow: .dropOldest)
        let results = (1...5).map { bus.publish(numberedEvent($0)) }
        #expect(results.map(\.delivered) == [1, 1, 1, 1, 1])
        #expect(results.map(\.dropped) == [0, 0, 0, 1, 1])
        let taken = await subscription.takeQueued()
        #expect(taken.map(\.envelope.number) == [3, 4, 5])
        #expect(taken.map(\.seq) == [3, 4, 5])
        #expect(bus.deliveryStatistics(for: "slow") == DeliveryStatistics(successful: 3, failed: 0, channelFull: 2))
    }

    @Test func aFullSubscriptionDoesNotAffectOthers() async throws {
        let bus = EventBus()
        let stalled = try bus.subscribe(["#"], subscriber: "stalled", buffer: 1)
        let healthy = try bus.subscribe(["#"], subscriber: "healthy", buffer: 100)
        for number in 1...50 { bus.publish(numberedEvent(number)) }
        #expect(await healthy.takeQueued().map(\.envelope.number) == Array(1...50))
        #expect(bus.deliveryStatistics(for: "stalled")?.channelFull == 49)
        _ = stalled
    }

    @Test func rejectsBadOptions() {
        let bus = EventBus()
        #expect(throws: SubscriptionError.self) { try bus.subscribe([String](), subscriber: "x") }
        #expect(throws: SubscriptionError.invalidRequest("buffer: must be from 1 to 100000")) {
            try bus.subscribe(["#"], buffer: 0)
        }
        #expect(throws: SubscriptionError.invalidRequest("buffer: must be from 1 to 100000")) {
            try bus.subscribe(["#"], buffer: 100_001)
        }
        do {
            _ = try bus.subscribe(["block.new", "Block"])
            Issue.record("an invalid pattern was accepted")
        } catch {
            #expect(error.isInvalidTopic)
            #expect(error.message == "pattern 'Block': words are lowercase letters, digits and '_'")
        }
        #expect(bus.subscriptionCount == 0)
    }

    // MARK: once

    @Test func onceTakesTheFirstMatchAndLeaves() async throws {
        let bus = EventBus()
        let first = try bus.once(["block.#"], subscriber: "waiter")
        #expect(bus.subscriptionCount == 1)
        #expect(bus.publish(numberedEvent(1)).delivered == 1)
        // Removed as soon as it has its event.
        #expect(bus.subscriptionCount == 0)
        #expect(bus.publish(numberedEvent(2)).delivered == 0)
        var received: [Int] = []
        for await envelope in first { received.append(envelope.number) }
        #expect(received == [1])
    }

    @Test func onceCancelledBeforeItsEventIsTakenCountsItAsFailed() async throws {
        let bus = EventBus()
        let waiter = try bus.once(["#"], subscriber: "gave-up")
        bus.publish(numberedEvent(1))
        waiter.cancel()
        var iterator = waiter.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(bus.deliveryStatistics(for: "gave-up") == DeliveryStatistics(successful: 0, failed: 1, channelFull: 0))
    }

    @Test func onceWithAFilterWaitsForAMatchingEvent() async throws {
        let bus = EventBus()
        let waiter = try bus.once(["#"]) { $0.number == 3 }
        let result = Task { await waiter.first { _ in true }?.number }
        for number in 1...5 { bus.publish(numberedEvent(number)) }
        #expect(await result.value == 3)
    }

    // MARK: Removing

    @Test func unsubscribeAllOfASubscriber() async throws {
        let bus = EventBus()
        let a = try bus.subscribe(["block.#"], subscriber: "indexer")
        let b = try bus.subscribe(["tx.#"], subscriber: "indexer")
        let c = try bus.subscribe(["#"], subscriber: "cache")
        #expect(bus.unsubscribeAll(subscriber: "indexer") == 2)
        #expect(bus.subscriptionCount == 1)
        #expect(bus.publish(numberedEvent(1)).delivered == 1)
        // A removed subscription's sequence ends.
        var iterator = a.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        _ = (b, c)
    }

    @Test func unsubscribeAllOfAPattern() async throws {
        let bus = EventBus()
        let a = try bus.subscribe(["block.#", "tx.#"], subscriber: "one")
        let b = try bus.subscribe(["block.#"], subscriber: "two")
        let c = try bus.subscribe(["block.new.*"], subscriber: "three")
        bus.publish(numberedEvent(1))
        // `block.#.#` matches what `block.#` matches, so it names the same pattern.
        #expect(bus.unsubscribeAll(pattern: try TopicPattern("block.#.#")) == 2)
        #expect(bus.subscribers(for: "block.new") == ["three"])
        var iterator = a.makeAsyncIterator()
        #expect(await iterator.next() == nil)
        #expect(bus.deliveryStatistics(for: "one") == DeliveryStatistics(successful: 0, failed: 1, channelFull: 0))
        _ = (b, c)
    }

    @Test func subscribersOfAnEventTypeAreSortedNames() async throws {
        let bus = EventBus()
        let subscriptions = try [
            bus.subscribe(["block.new.*"], subscriber: "indexer"),
            bus.subscribe(["block.#"], subscriber: "cache"),
            bus.subscribe(["#.138"], subscriber: "explorer"),
            bus.subscribe(["block.new"], subscriber: "cache"),
            bus.subscribe(["transaction.#"], subscriber: "mempool"),
        ]
        #expect(bus.subscribers(for: "block.new") == ["cache", "explorer", "indexer"])
        #expect(bus.subscribers(for: "transaction.pending") == ["explorer", "mempool"])
        #expect(bus.subscribers(for: "peer.connected") == ["explorer"])
        _ = subscriptions
    }

    // MARK: Statistics (PROTOCOL.md §5)

    @Test func statisticsSurviveDepartureAndReset() async throws {
        let bus = EventBus()
        #expect(bus.deliveryStatistics(for: "indexer") == nil)
        let subscription = try bus.subscribe(["#"], subscriber: "indexer", buffer: 2)
        for number in 1...3 { bus.publish(numberedEvent(number)) }
        _ = await subscription.takeQueued()
        bus.publish(numberedEvent(4))
        subscription.cancel()
        // 2 taken, 1 dropped, 1 still queued at cancel.
        let expected = DeliveryStatistics(successful: 2, failed: 1, channelFull: 1)
        #expect(bus.deliveryStatistics(for: "indexer") == expected)
        #expect(bus.allDeliveryStatistics() == ["indexer": expected])
        #expect(bus.resetDeliveryStatistics(for: "indexer") == DeliveryStatistics())
        #expect(bus.deliveryStatistics(for: "indexer") == DeliveryStatistics())
        #expect(bus.resetDeliveryStatistics(for: "nobody") == nil)
    }

    /// `cancel()` ends the sequence at once, even while its iterator holds a batch it took: the rest of the
    /// batch counts as failed, as with a cancelled task.
    @Test func cancelInTheMiddleOfABatchEndsTheSequence() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "mid", buffer: 10)
        for number in 1...5 { bus.publish(numberedEvent(number)) }
        var taken = 0
        for await _ in subscription {
            taken += 1
            if taken == 2 { subscription.cancel() }
        }
        #expect(taken == 2)
        #expect(bus.deliveryStatistics(for: "mid") == DeliveryStatistics(successful: 2, failed: 3))
    }

    @Test func resetWhileSubscribedCountsFromZero() async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(["#"], subscriber: "live")
        bus.publish(numberedEvent(1))
        bus.publish(numberedEvent(2))
        _ = await subscription.takeQueued()
        #expect(bus.resetDeliveryStatistics(for: "live") == DeliveryStatistics())
        bus.publish(numberedEvent(3))
        _ = await subscription.takeQueued()
        #expect(bus.deliveryStatistics(for: "live") == DeliveryStatistics(successful: 1))
    }

    /// Past the limit, the names longest without a subscription or a note are forgotten; names with a live
    /// subscription are kept, counts and all, however long ago they were noted.
    @Test func statisticsOfIdleNamesAreForgottenPastTheLimitLongestIdleFirst() async throws {
        let bus = EventBus(statisticsLimit: 8)
        let subscription = try bus.subscribe(["#"], subscriber: "live")
        bus.publish(numberedEvent(1))
        _ = await subscription.takeQueued()
        for index in 0..<8 { bus.noteSubscriber("idle-\(index)") }
        // 9 names: over the limit, down to 6 — "live" stays (subscribed), and the 3 oldest idle ones go.
        #expect(Set(bus.allDeliveryStatistics().keys) == Set(["live"] + (3..<8).map { "idle-\($0)" }))
        #expect(bus.deliveryStatistics(for: "live") == DeliveryStatistics(successful: 1))
        // Noting a name again makes it the newest: it outlives older ones.
        bus.noteSubscriber("idle-3")
        for index in 8..<11 { bus.noteSubscriber("idle-\(index)") }
        #expect(bus.allDeliveryStatistics().count <= 8)
        #expect(bus.deliveryStatistics(for: "idle-3") != nil)
        #expect(bus.deliveryStatistics(for: "idle-4") == nil)
        #expect(bus.deliveryStatistics(for: "live") == DeliveryStatistics(successful: 1))
        // A forgotten name that comes back starts at zero, as a name never seen.
        bus.noteSubscriber("idle-0")
        #expect(bus.deliveryStatistics(for: "idle-0") == DeliveryStatistics())
        subscription.cancel()
    }

    @Test func statisticsAccumulateOverSubscriptionsOfOneName() async throws {
        let bus = EventBus()
        for round in 1...3 {
            let subscription = try bus.subscribe(["#"], subscriber: "module")
            bus.publish(numberedEvent(round))
            _ = await subscription.takeQueued()
            subscription.cancel()
        }
        #expect(bus.deliveryStatistics(for: "module")?.successful == 3)
    }

    /// The route cache is bounded by the subscriptions its routes name, not only by its topics: with many
    /// subscriptions on `#`, 8192 cached routes held hundreds of megabytes.
    @Test func theRouteCacheIsBoundedByTheSubscriptionsItNames() throws {
        let bus = EventBus()
        let subscriptions = try (0..<600).map { _ in try bus.subscribe(["#"], buffer: 1) }
        var cachedMost = 0
        for chain in 0..<2000 {
            _ = bus.publish(numberedEvent(chain, chainID: Int64(chain)))
            cachedMost = max(cachedMost, bus.cachedRouteEntries)
        }
        // 2000 topics of 600 subscriptions each: 1.2 million entries unbounded.
        #expect(cachedMost <= EventBus.routeCacheEntryLimit)
        #expect(cachedMost > EventBus.routeCacheEntryLimit - 600)
        withExtendedLifetime(subscriptions) {}
    }
}

@Suite struct ReadmeExampleTests {
    /// The README's example, as written there, with its claims checked.
    @Test func readmeExampleWorks() async throws {
        let bus = EventBus()

        let blocks = try bus.subscribe(BlockNew.self, subscriber: "indexer")
        let printed = Task {
            var lines: [String] = []
            for await block in blocks {
                lines.append("\(block.envelope.chainID ?? -1) \(block.payload.blockNumber)")
                break
            }
            return lines
        }

        let chain138 = try bus.subscribe(["#.138"], subscriber: "explorer", buffer: 1000, overflow: .dropOldest)

        let result = try bus.publish(BlockNew(hash: "0xabc", blockNumber: 12345), chainID: 138)
        #expect(result == PublishResult(delivered: 2, dropped: 0))
        #expect(await printed.value == ["138 12345"])
        #expect(bus.deliveryStatistics(for: "indexer") == DeliveryStatistics(successful: 1))
        #expect(await chain138.takeQueued().map(\.envelope.eventType) == ["block.new"])
    }
}
