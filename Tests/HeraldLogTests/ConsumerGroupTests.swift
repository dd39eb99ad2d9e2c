import Dispatch
import Foundation
import HeraldCore
import Synchronization
import Testing

@testable import HeraldLog

/// A clock a test moves by hand.
final class ManualClock: Sendable {
    private let now = Atomic<Int64>(1_000_000)
    private let wallOffset: Int64 = 1_780_000_000_000

    func advance(_ milliseconds: Int64) { now.add(milliseconds, ordering: .relaxed) }

    var clock: GroupClock {
        GroupClock(
            monotonic: { self.now.load(ordering: .relaxed) },
            wall: { self.now.load(ordering: .relaxed) + self.wallOffset })
    }

    /// The wall time the clock reads now.
    var wall: Int64 { clock.wall() }
}

/// A log with consumer groups in a temporary directory, on a hand-moved clock.
struct GroupFixture {
    let directory: TemporaryDirectory
    let log: DurableLog
    let groups: ConsumerGroups
    let time = ManualClock()

    init(partitions: Int = 8, settings: GroupSettings = GroupSettings(), segmentBytes: Int? = nil) throws {
        directory = try TemporaryDirectory()
        var configuration = LogConfiguration(directory: directory.path + "/log", partitions: partitions)
        if let segmentBytes { configuration.segmentBytes = segmentBytes }
        log = try DurableLog(configuration: configuration)
        groups = try ConsumerGroups(
            log: log, directory: directory.path + "/groups", settings: settings, clock: time.clock)
    }

    /// The same directory opened again, as after a restart.
    func reopened(settings: GroupSettings = GroupSettings()) throws -> GroupFixture {
        groups.close()
        log.close()
        return try reopenedAfterClose(settings: settings)
    }

    /// The same directory opened again, its groups and log closed already (changed in between).
    func reopenedAfterClose(settings: GroupSettings = GroupSettings()) throws -> GroupFixture {
        try GroupFixture(directory: directory, settings: settings, partitions: log.partitionCount)
    }

    private init(directory: TemporaryDirectory, settings: GroupSettings, partitions: Int) throws {
        self.directory = directory
        log = try DurableLog(
            configuration: LogConfiguration(directory: directory.path + "/log", partitions: partitions))
        groups = try ConsumerGroups(
            log: log, directory: directory.path + "/groups", settings: settings, clock: time.clock)
    }

    func close() {
        groups.close()
        log.close()
        directory.remove()
    }

    /// Stores an event of `type` in `partition`, durably, as the broker stores it; returns its offset.
    @discardableResult
    func store(_ type: String, chainID: Int? = nil, id: String, partition: Int = 0) async throws -> Int64 {
        let chain = chainID.map { #","chain_id":\#($0)"# } ?? ""
        let sealed = try EventEnvelope(
            json: Array(#"{"event_type":"\#(type)"\#(chain),"event_id":"\#(id)","payload":{}}"#.utf8))
        return try await log.appendDurably(partition: partition, timestamp: time.wall) { _ in sealed.json }.offset
    }

    func group(_ name: String = "g", topics: [String] = ["#"], from start: GroupStart = .earliest) throws
        -> ConsumerGroup
    {
        try groups.group(named: name, topics: topics.map { try TopicPattern($0) }, start: start)
    }
}

extension GroupDelivery {
    /// The `event_id` of the delivered envelope.
    var eventID: String { (try? EventEnvelope(json: bytes, form: .delivered))?.eventID ?? "?" }
}

@Suite(.timeLimit(.minutes(3)))
struct ConsumerGroupTests {
    @Test func partitionsAreSpreadOverMembersInJoinOrderAndSpreadAgainWhenOneLeaves() async throws {
        let fixture = try GroupFixture(partitions: 4)
        defer { fixture.close() }
        for partition in 0..<4 { try await fixture.store("tx", id: "p\(partition)", partition: partition) }
        let group = try fixture.group()
        let first = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let second = group.join(subscription: 2, maxInFlight: nil, ackWaitMs: nil)
        let firstTaken = try group.take(first, maximum: 100)
        let secondTaken = try group.take(second, maximum: 100)
        #expect(firstTaken.map(\.partition) == [0, 2])
        #expect(secondTaken.map(\.partition) == [1, 3])
        #expect(firstTaken.map(\.attempt) == [1, 1])
        // The second leaves without acknowledging: its partitions and its events go to the first.
        group.leave(second)
        let redelivered = try group.take(first, maximum: 100)
        #expect(Set(redelivered.map(\.eventID)) == ["p1", "p3"])
        #expect(redelivered.map(\.attempt) == [2, 2])
        #expect(redelivered.map(\.seq) == [3, 4])
    }

    @Test func firstDeliveriesComeInOffsetOrderWithinMaxInFlight() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        for index in 0..<10 { try await fixture.store("tx", id: "e\(index)") }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: 3, ackWaitMs: nil)
        #expect(try group.take(member, maximum: 100).map(\.offset) == [0, 1, 2])
        #expect(try group.take(member, maximum: 100).isEmpty)
        // One acknowledgement frees one place; the rest of the partition waits in the log.
        #expect(group.ack(member, seqs: [2]).unknown.isEmpty)
        #expect(try group.take(member, maximum: 100).map(\.offset) == [3])
        #expect(group.lag().first?.committed == 0)
        _ = group.ack(member, seqs: [1, 3, 4])
        #expect(group.lag().first?.committed == 4)
    }

    /// An event waiting for its redelivery is still unacknowledged: it keeps its place in the member's
    /// `max_in_flight`, and the events after it wait in the log (a review saw a member slower than its ack
    /// wait hold twice its limit).
    @Test func eventsWaitingForARedeliveryCountAgainstMaxInFlight() async throws {
        let fixture = try GroupFixture(partitions: 1, settings: GroupSettings(ackWaitMs: 100, backoffMs: [1000]))
        defer { fixture.close() }
        for index in 0..<10 { try await fixture.store("tx", id: "e\(index)") }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: 3, ackWaitMs: nil)
        #expect(try group.take(member, maximum: 100).map(\.offset) == [0, 1, 2])
        fixture.time.advance(100)
        group.expire(now: fixture.time.clock.monotonic())
        // All three wait for their backoff: nothing new is handed out meanwhile.
        #expect(try group.take(member, maximum: 100).isEmpty)
        fixture.time.advance(1000)
        let again = try group.take(member, maximum: 100)
        #expect(again.map(\.offset) == [0, 1, 2])
        #expect(again.map(\.attempt) == [2, 2, 2])
        // One acknowledged: one new event.
        #expect(group.ack(member, seqs: [try #require(again.first).seq]).unknown.isEmpty)
        #expect(try group.take(member, maximum: 100).map(\.offset) == [3])
    }

    @Test func eventsWaitingForARedeliveryHoldBackNoNewEventsWhileTheLimitHasRoom() async throws {
        let fixture = try GroupFixture(partitions: 1, settings: GroupSettings(ackWaitMs: 100, backoffMs: [1000]))
        defer { fixture.close() }
        for index in 0..<10 { try await fixture.store("tx", id: "e\(index)") }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: 6, ackWaitMs: nil)
        #expect(try group.take(member, maximum: 3).map(\.offset) == [0, 1, 2])
        fixture.time.advance(100)
        group.expire(now: fixture.time.clock.monotonic())
        // Three wait for their backoff and take three places of six: takes of two (fewer than wait) still
        // get new events, up to the three places left.
        #expect(try group.take(member, maximum: 2).map(\.offset) == [3, 4])
        #expect(try group.take(member, maximum: 2).map(\.offset) == [5])
        #expect(try group.take(member, maximum: 2).isEmpty)
    }

    @Test func aTimedOutDeliveryComesBackAfterTheBackoffWithoutHoldingBackLaterEvents() async throws {
        let fixture = try GroupFixture(
            partitions: 1, settings: GroupSettings(ackWaitMs: 100, backoffMs: [1000, 2000]))
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        try await fixture.store("tx", id: "slow")
        #expect(try group.take(member, maximum: 10).map(\.eventID) == ["slow"])
        fixture.time.advance(100)
        group.expire(now: fixture.time.clock.monotonic())
        try await fixture.store("tx", id: "later")
        // The later event is delivered while the first waits for its backoff. Acknowledged at once: the group's
        // real-time timer, firing once this (manual) clock has moved past its ack wait, would take it back.
        #expect(try group.take(member, maximum: 10).map(\.eventID) == ["later"])
        #expect(group.ack(member, seqs: [2]).unknown.isEmpty)
        fixture.time.advance(999)
        #expect(try group.take(member, maximum: 10).isEmpty)
        fixture.time.advance(1)
        let again = try group.take(member, maximum: 10)
        #expect(again.map(\.eventID) == ["slow"])
        #expect(again.map(\.attempt) == [2])
        // An acknowledgement of the first, timed-out delivery comes too late and changes nothing.
        #expect(group.ack(member, seqs: [1]).unknown.isEmpty)
        #expect(group.lag().first?.committed == 0)
        _ = group.ack(member, seqs: [3])
        #expect(group.lag().first?.committed == 2)
    }

    /// `expire` looks at the events in flight only once the earliest ack deadline may have passed: each
    /// member's own ack wait counts, an ack of the event that had the earliest deadline does not hide the
    /// next one, and a nack falling due while a later ack deadline is pending still wakes its waiting owner.
    @Test func ackDeadlinesAndRedeliveriesAreKeptWhateverIsInFlightBesideThem() async throws {
        let fixture = try GroupFixture(partitions: 2, settings: GroupSettings(backoffMs: [1000]))
        defer { fixture.close() }
        let group = try fixture.group()
        let patient = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: 5000)
        let hasty = group.join(subscription: 2, maxInFlight: nil, ackWaitMs: 100)
        try await fixture.store("tx", id: "p0", partition: 0)
        try await fixture.store("tx", id: "h0", partition: 1)
        #expect(try group.take(patient, maximum: 10).map(\.eventID) == ["p0"])
        let first = try group.take(hasty, maximum: 10)
        #expect(first.map(\.eventID) == ["h0"])
        // The event with the earliest deadline is acknowledged; the next one comes 50 ms later.
        #expect(group.ack(hasty, seqs: [first[0].seq]).unknown.isEmpty)
        fixture.time.advance(50)
        try await fixture.store("tx", id: "h1", partition: 1)
        #expect(try group.take(hasty, maximum: 10).map(\.eventID) == ["h1"])
        fixture.time.advance(70)
        group.expire(now: fixture.time.clock.monotonic())
        #expect(group.lag().map(\.committed) == [0, 1])
        // 150 ms: h1's ack wait is over (p0's, 5 000 ms, is not): it waits for its backoff, and its owner
        // for something to take.
        fixture.time.advance(30)
        group.expire(now: fixture.time.clock.monotonic())
        #expect(try group.take(hasty, maximum: 10).isEmpty)
        #expect(try group.take(patient, maximum: 10).isEmpty)
        let (woken, continuation) = AsyncStream<Void>.makeStream()
        hasty.onWake { continuation.yield() }
        // 1 150 ms: h1 is due again while p0 is still in flight: its owner is woken.
        fixture.time.advance(1000)
        group.expire(now: fixture.time.clock.monotonic())
        try await withThrowingTaskGroup(of: Bool.self) { wait in
            wait.addTask {
                var iterator = woken.makeAsyncIterator()
                return await iterator.next() != nil
            }
            wait.addTask {
                try await Task.sleep(for: .seconds(10))
                return false
            }
            let wokenInTime = try await wait.next()
            #expect(wokenInTime == true, "the owner of a redelivery that fell due was not woken")
            wait.cancelAll()
        }
        let again = try group.take(hasty, maximum: 10)
        #expect(again.map(\.eventID) == ["h1"])
        #expect(again.map(\.attempt) == [2])
        // 5 000 ms: p0's ack wait is over; after its backoff it comes back.
        fixture.time.advance(3850)
        group.expire(now: fixture.time.clock.monotonic())
        #expect(try group.take(patient, maximum: 10).isEmpty)
        fixture.time.advance(1000)
        let late = try group.take(patient, maximum: 10)
        #expect(late.map(\.eventID) == ["p0"])
        #expect(late.map(\.attempt) == [2])
    }

    @Test func aNackIsRedeliveredAfterItsDelayAndTheLastAllowedAttemptGoesToTheDeadLetterQueue() async throws {
        let fixture = try GroupFixture(partitions: 1, settings: GroupSettings(maxDeliver: 2, backoffMs: [500]))
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        try await fixture.store("tx", chainID: 5, id: "poison")
        let first = try #require(try group.take(member, maximum: 10).first)
        _ = group.nack(member, seq: first.seq, delayMs: 50, deadLetter: false)
        fixture.time.advance(49)
        #expect(try group.take(member, maximum: 10).isEmpty)
        fixture.time.advance(1)
        let second = try #require(try group.take(member, maximum: 10).first)
        #expect(second.attempt == 2)
        _ = group.nack(member, seq: second.seq, delayMs: nil, deadLetter: false)
        try await waitUntil { group.deadLetterCount == 1 && group.lag().first?.committed == 1 }
        let letter = try #require(try group.listDeadLetters(limit: 100).first)
        let envelope = try EventEnvelope(json: letter.bytes, form: .delivered)
        #expect(envelope.eventID == "poison")
        #expect(envelope.chainID == 5)
        #expect(envelope.metadata["dead_letter_reason"] == "max_deliver")
        #expect(envelope.metadata["attempts"] == "2")
        #expect(envelope.metadata["original_offset"] == "0")
        #expect(envelope.metadata["original_partition"] == "0")
        #expect(envelope.metadata["group"] == "g")
        fixture.time.advance(10_000)
        #expect(try group.take(member, maximum: 10).isEmpty)
    }

    /// The last allowed attempt was in flight when the broker stopped: after the restart the event goes to
    /// the dead-letter queue, not to a consumer once more.
    @Test func anEventWhoseLastAttemptWasInFlightAtARestartGoesToTheDeadLetterQueue() async throws {
        let settings = GroupSettings(maxDeliver: 2, backoffMs: [500])
        var fixture = try GroupFixture(partitions: 1, settings: settings)
        var group = try fixture.group()
        var member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        try await fixture.store("tx", id: "poison")
        try await fixture.store("tx", id: "fine")
        let first = try group.take(member, maximum: 10)
        #expect(first.map(\.eventID) == ["poison", "fine"])
        _ = group.nack(member, seq: first[0].seq, delayMs: 0, deadLetter: false)
        let second = try #require(try group.take(member, maximum: 10).first)
        #expect(second.eventID == "poison" && second.attempt == 2)
        let answer = group.ack(member, seqs: [first[1].seq])
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(answer.version) { continuation.resume(with: $0) }
        }
        fixture = try fixture.reopened(settings: settings)
        defer { fixture.close() }
        group = try #require(fixture.groups.group(named: "g"))
        member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        #expect(try group.take(member, maximum: 10).isEmpty)
        try await waitUntil { group.deadLetterCount == 1 && group.lag().first?.committed == 2 }
        let letter = try EventEnvelope(
            json: try #require(try group.listDeadLetters(limit: 100).first).bytes, form: .delivered)
        #expect(letter.eventID == "poison")
        #expect(letter.metadata["dead_letter_reason"] == "max_deliver")
        #expect(letter.metadata["attempts"] == "2")
        fixture.time.advance(10_000)
        #expect(try group.take(member, maximum: 10).isEmpty)
    }

    /// A group with unlimited attempts (the RabbitMQ bridge's) never dead-letters for them: an event its
    /// leaving member held, or held at a restart, is delivered again, whatever `max_deliver` says.
    @Test func aGroupWithUnlimitedAttemptsDeliversAgainAfterLeavesAndRestarts() async throws {
        var settings = GroupSettings(maxDeliver: 1, backoffMs: [0])
        settings.unlimitedAttempts = ["bridge"]
        var fixture = try GroupFixture(partitions: 1, settings: settings)
        var group = try fixture.group("bridge")
        try await fixture.store("tx", id: "held")
        for attempt in 1...3 {
            let member = group.join(subscription: UInt64(attempt), maxInFlight: nil, ackWaitMs: nil)
            let taken = try group.take(member, maximum: 10)
            #expect(taken.map(\.eventID) == ["held"] && taken.first?.attempt == attempt)
            group.leave(member)
        }
        let member = group.join(subscription: 9, maxInFlight: nil, ackWaitMs: nil)
        let fourth = try #require(try group.take(member, maximum: 10).first)
        #expect(fourth.attempt == 4)
        let answer = group.ack(member, seqs: [])
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(answer.version) { continuation.resume(with: $0) }
        }
        fixture = try fixture.reopened(settings: settings)
        defer { fixture.close() }
        group = try #require(fixture.groups.group(named: "bridge"))
        let again = group.join(subscription: 10, maxInFlight: nil, ackWaitMs: nil)
        #expect(try group.take(again, maximum: 10).map(\.attempt) == [5])
        #expect(group.deadLetterCount == 0)
    }

    @Test func aNackWithDeadLetterGoesStraightToTheDeadLetterQueue() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        try await fixture.store("tx", id: "bad")
        try await fixture.store("tx", id: "good")
        let taken = try group.take(member, maximum: 10)
        _ = group.nack(member, seq: taken[0].seq, delayMs: nil, deadLetter: true)
        _ = group.ack(member, seqs: [taken[1].seq])
        try await waitUntil { group.deadLetterCount == 1 && group.lag().first?.committed == 2 }
        let letter = try EventEnvelope(
            json: try #require(try group.listDeadLetters(limit: 100).first).bytes, form: .delivered)
        #expect(letter.metadata["dead_letter_reason"] == "nack")
        #expect(letter.metadata["attempts"] == "1")
    }

    /// A replay at any moment after a dead letter is appended — even between the letter becoming readable in
    /// the queue and the group hearing it is durable — leaves the event a dead letter or pending again,
    /// never neither. Each round replays as soon as the letter can be read.
    @Test func aReplayRacingADeadLettersCompletionLosesNoEvent() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        for round in 0..<200 {
            try await fixture.store("tx", id: "r\(round)")
            let taken = try #require(try group.take(member, maximum: 10).first)
            #expect(taken.eventID == "r\(round)" && taken.attempt == 1)
            _ = group.nack(member, seq: taken.seq, delayMs: nil, deadLetter: true)
            var replayed = 0
            while replayed == 0 { replayed = try group.replayDeadLetters().count }
            #expect(replayed == 1)
            // Pending again, with no attempts spent: delivered once more.
            var again: [GroupDelivery] = []
            try await waitUntil {
                again += (try? group.take(member, maximum: 10)) ?? []
                return !again.isEmpty
            }
            #expect(again.map(\.eventID) == ["r\(round)"], "round \(round)")
            #expect(again.first?.attempt == 1)
            _ = group.ack(member, seqs: again.map(\.seq))
        }
        try await waitUntil { group.lag().first?.committed == 200 }
        #expect(group.deadLetterCount == 0)
    }

    @Test(arguments: [false, true])
    func purgedOrReplayedDeadLettersGiveTheirSpaceBack(replay: Bool) async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: 1_000, ackWaitMs: nil)
        // 12 dead letters of ~100 KB: more than one of the queue's 1 MiB segments.
        let padding = String(repeating: "x", count: 100_000)
        for index in 0..<12 {
            let sealed = try EventEnvelope(
                json: Array(#"{"event_type":"tx","event_id":"e\#(index)","payload":{"pad":"\#(padding)"}}"#.utf8))
            _ = try await fixture.log.appendDurably(partition: 0, timestamp: fixture.time.wall) { _ in sealed.json }
        }
        for delivery in try group.take(member, maximum: 100, maximumBytes: 8 << 20) {
            _ = group.nack(member, seq: delivery.seq, delayMs: nil, deadLetter: true)
        }
        try await waitUntil { group.deadLetterCount == 12 }
        let segments = DurableLog.partitionDirectory(fixture.directory.path + "/groups/g/dead-letters", 0)
        func segmentCount() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: segments)) ?? []).filter { $0.hasSuffix(".log") }
                .count
        }
        #expect(segmentCount() == 2)
        let outcome = replay ? try group.replayDeadLetters() : group.purgeDeadLetters()
        #expect(outcome.count == 12)
        // Once the group's state says so on disk, only the active segment is left.
        try await waitUntil { segmentCount() == 1 }
        #expect(group.deadLetterCount == 0)
        #expect(try group.listDeadLetters(limit: 100).isEmpty)
        if replay {
            // The replayed events are the group's again, all 12 of them.
            let replayed = try group.take(member, maximum: 100, maximumBytes: 8 << 20)
            #expect(replayed.map(\.eventID) == (0..<12).map { "e\($0)" })
            let answer = group.ack(member, seqs: replayed.map(\.seq))
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                group.whenCommitted(answer.version) { continuation.resume(with: $0) }
            }
        }
        // Later dead letters are kept, and the count survives a restart.
        let reopened = try fixture.reopened()
        defer { reopened.close() }
        let again = try reopened.group()
        #expect(again.deadLetterCount == 0)
        let next = again.join(subscription: 2, maxInFlight: nil, ackWaitMs: nil)
        try await reopened.store("tx", id: "late")
        let late = try #require(try again.take(next, maximum: 100).first { $0.eventID == "late" })
        _ = again.nack(next, seq: late.seq, delayMs: nil, deadLetter: true)
        try await waitUntil { again.deadLetterCount == 1 }
        let letters = try again.listDeadLetters(limit: 10)
        #expect(letters.map { (try? EventEnvelope(json: $0.bytes, form: .delivered))?.eventID } == ["late"])
    }

    @Test func anAckNamingASeqNeverDeliveredChangesNothing() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        try await fixture.store("tx", id: "a")
        _ = try group.take(member, maximum: 10)
        #expect(group.ack(member, seqs: [1, 2]).unknown == [2])
        #expect(group.ack(member, seqs: [0]).unknown == [0])
        #expect(group.lag().first?.committed == 0)
        #expect(group.nack(member, seq: 9, delayMs: nil, deadLetter: true).unknown == [9])
        #expect(group.ack(member, seqs: [1]).unknown.isEmpty)
        #expect(group.lag().first?.committed == 1)
    }

    @Test func eventsOutsideTheGroupsTopicsAreSkippedAndCommittedPast() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group(topics: ["block.*.1"])
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        try await fixture.store("block.new", chainID: 2, id: "other-chain")
        try await fixture.store("block.new", chainID: 1, id: "mine")
        try await fixture.store("tx", id: "not-a-block")
        let taken = try group.take(member, maximum: 10)
        #expect(taken.map(\.eventID) == ["mine"])
        #expect(taken.map(\.offset) == [1])
        _ = group.ack(member, seqs: [taken[0].seq])
        #expect(group.lag().first == PartitionLag(partition: 0, committed: 3, head: 3, oldestUnackedAgeMs: nil))
    }

    @Test func withNoMemberEventsOutsideTheTopicsDoNotCountAsLag() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group(topics: ["t.#"])
        for index in 0..<20 { try await fixture.store("u.x", id: "u-\(index)") }
        // No member reads, yet the group moves past what is not its own, as a member would.
        try await waitUntil { group.lag().first?.committed == 20 }
        #expect(group.lag() == [PartitionLag(partition: 0, committed: 20, head: 20, oldestUnackedAgeMs: nil)])
        // Its own events stop it: they are lag until a member takes them, and what follows them too.
        try await fixture.store("t.a", id: "mine")
        try await fixture.store("u.x", id: "after")
        try await waitUntil { fixture.log.bounds(partition: 0).end == 22 }
        #expect(group.lag().first?.committed == 20)
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        #expect(try group.take(member, maximum: 10).map(\.eventID) == ["mine"])
    }

    @Test func aNewGroupStartsWhereFromSaysAndAnExistingOneKeepsItsPlace() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        for index in 0..<4 {
            try await fixture.store("tx", id: "e\(index)")
            fixture.time.advance(1000)
        }
        let third = fixture.time.wall - 2000
        let cases: [(String, GroupStart, [String])] = [
            ("latest", .latest, []), ("earliest", .earliest, ["e0", "e1", "e2", "e3"]),
            ("offset", .offset(1), ["e1", "e2", "e3"]), ("time", .time(third), ["e2", "e3"]),
        ]
        for (name, start, expected) in cases {
            let group = try fixture.group(name, from: start)
            let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
            #expect(try group.take(member, maximum: 10).map(\.eventID) == expected, "\(name)")
            // Asked for again with another `from`, the group is the same one.
            #expect(try fixture.group(name, from: .earliest) === group)
        }
        #expect(throws: GroupError.topicsDiffer(group: "latest", existing: ["#"])) {
            try fixture.group("latest", topics: ["tx"])
        }
    }

    /// Deleting a group: refused while it has a member, then its files go — committed offsets, journal, dead
    /// letters — it is not loaded at the next start, and a subscribe to its name makes a new group that
    /// starts where its `from` says, not where the old one was.
    @Test func aGroupWithNoMemberIsDeletedWithItsFiles() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let topics = [try TopicPattern("#")]
        for index in 0..<3 { try await fixture.store("tx", id: "e\(index)") }
        let (group, member) = try fixture.groups.join(
            group: "old", topics: topics, start: .earliest, subscription: { 1 }, maxInFlight: nil, ackWaitMs: nil)
        let taken = try group.take(member, maximum: 10)
        _ = group.nack(member, seq: taken[0].seq, delayMs: nil, deadLetter: true)
        let acked = group.ack(member, seqs: [taken[1].seq])
        try await waitUntil { group.deadLetterCount == 1 }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(acked.version) { continuation.resume(with: $0) }
        }
        let path = fixture.directory.path + "/groups/old"
        #expect(FileManager.default.fileExists(atPath: path + "/dead-letters"))

        #expect(throws: GroupError.inUse(group: "old", members: 1)) { try fixture.groups.delete("old") }
        #expect(fixture.groups.group(named: "old") === group)
        group.leave(member)
        try fixture.groups.delete("old")
        #expect(fixture.groups.group(named: "old") == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path + "/groups").isEmpty)
        #expect(throws: GroupError.notFound("old")) { try fixture.groups.delete("old") }
        // A commit the committer still had for it writes nothing (it would make the directory again).
        group.commit(closing: true)
        #expect(!FileManager.default.fileExists(atPath: path))

        let reopened = try fixture.reopened()
        #expect(reopened.groups.all.isEmpty)
        let (again, newMember) = try reopened.groups.join(
            group: "old", topics: topics, start: .latest, subscription: { 2 }, maxInFlight: nil, ackWaitMs: nil)
        #expect(again.deadLetterCount == 0)
        #expect(again.lag().first?.committed == 3)
        try await reopened.store("tx", id: "e3")
        #expect(try again.take(newMember, maximum: 10).map(\.eventID) == ["e3"])
        reopened.groups.close()
        reopened.log.close()
    }

    /// While a group's deletion waits for a state write under way, a subscribe to its name is refused
    /// (`deleting`): made then, the new group would have been made on the directory being removed. Once the
    /// deletion is done, the name makes a new group.
    @Test func aGroupBeingDeletedIsNotMadeAgainUntilItsFilesAreGone() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let topics = [try TopicPattern("#")]
        let group = try fixture.group("g")
        // Held as by a whole-state write: the deletion waits for it.
        let release = await group.holdStateWriter()
        let deleted = StateLock<Result<Void, GroupError>?>(nil)
        DispatchQueue.global().async {
            let result = Result { () throws(GroupError) in try fixture.groups.delete("g") }
            deleted.withLock { $0 = result }
        }
        try await waitUntil { fixture.groups.group(named: "g") == nil }
        #expect(throws: GroupError.deleting("g")) {
            try fixture.groups.join(
                group: "g", topics: topics, start: .earliest, subscription: { 1 }, maxInFlight: nil, ackWaitMs: nil)
        }
        #expect(deleted.withLock { $0 == nil })
        release()
        try await waitUntil { deleted.withLock { $0 } != nil }
        try deleted.withLock { $0 }!.get()
        let (again, _) = try fixture.groups.join(
            group: "g", topics: topics, start: .earliest, subscription: { 2 }, maxInFlight: nil, ackWaitMs: nil)
        #expect(again !== group)
    }

    /// Whoever waits for a deleted group's change to be on disk (a dead-letter purge racing the delete) is
    /// told it never will be, at the deletion or at once after it, instead of waiting for ever; and its
    /// dead-letter queue is not made again by a late dead letter.
    @Test func aDeletedGroupsWaitersAndDeadLettersAreRefused() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group("g")
        let told = StateLock<Result<Void, LogError>?>(nil)
        group.whenCommitted(.max) { result in told.withLock { $0 = result } }
        func refused(_ result: Result<Void, LogError>?) -> Bool {
            if case .failure(.closed)? = result { return true }
            return false
        }
        #expect(told.withLock { $0 } == nil)
        try fixture.groups.delete("g")
        #expect(refused(told.withLock { $0 }))
        let late = StateLock<Result<Void, LogError>?>(nil)
        group.whenCommitted(.max) { result in late.withLock { $0 = result } }
        #expect(refused(late.withLock { $0 }))
        #expect(throws: LogError.closed) {
            try group.deadLetters.append(Array("{}".utf8), timestamp: 0) { _ in }
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.path + "/groups/g"))
    }

    /// Nacks each due earlier than the last arm a timer of their own; once they have fired, the group keeps
    /// one chain of deadline timers. Every such timer re-armed itself for as long as anything was held, so a
    /// busy group ran its deadline check more often with every nack.
    @Test func nacksDueEarlierEachLeaveNoTimerChainOfTheirOwn() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: LogConfiguration(directory: directory.path + "/log", partitions: 1))
        let groups = try ConsumerGroups(log: log, directory: directory.path + "/groups", settings: GroupSettings())
        defer {
            groups.close()
            log.close()
        }
        let sealed = try (0..<11).map { index in
            try EventEnvelope(json: Array(#"{"event_type":"tx","event_id":"e\#(index)","payload":{}}"#.utf8)).json
        }
        for bytes in sealed { _ = try await log.appendDurably(partition: 0, timestamp: 1) { _ in bytes } }
        let (group, member) = try groups.join(
            group: "g", topics: [try TopicPattern("#")], start: .earliest, subscription: { 1 }, maxInFlight: nil,
            ackWaitMs: 3_600_000)
        let taken = try group.take(member, maximum: 11)
        #expect(taken.count == 11)
        // The first stays held (its ack deadline an hour away); the others are nacked, each due earlier.
        for (index, delivery) in taken.dropFirst().enumerated() {
            _ = group.nack(member, seq: delivery.seq, delayMs: Int64(500 - index * 40), deadLetter: false)
        }
        // Once every nack's deadline passed: the take's timer for the held event (an hour away, to be skipped
        // when it fires) and the chain's one timer. There were eleven, all re-armed for that hour.
        try await waitUntil { group.armedTimers.load(ordering: .relaxed) <= 2 }
        #expect(group.armedTimers.load(ordering: .relaxed) == 2)
    }

    /// A take reads past at most ``ConsumerGroup/scanLimit`` records that are not the group's, and the member
    /// is not left waiting for new events when it stopped there: the next takes go on from where it stopped.
    /// One take read a whole partition of other events under the group's lock (and the log's writer waits
    /// for that lock to say events are readable).
    @Test func aTakeReadsPastALongRunOfOtherEventsAFewThousandAtATime() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let other = try EventEnvelope(json: Array(#"{"event_type":"block.new","event_id":"b","payload":{}}"#.utf8)).json
        for _ in 0..<10_000 { _ = try fixture.log.append(partition: 0, timestamp: 1) { _ in other } }
        try await fixture.store("order.new", id: "the-order")
        let (group, member) = try fixture.groups.join(
            group: "orders", topics: [try TopicPattern("order.*")], start: .earliest, subscription: { 1 },
            maxInFlight: nil, ackWaitMs: nil)
        var takes = 0
        var taken: [GroupDelivery] = []
        while taken.isEmpty && takes < 10 {
            taken = try group.take(member, maximum: 10)
            takes += 1
        }
        #expect(taken.map(\.eventID) == ["the-order"])
        // 10 001 records, 4096 a take: two takes find nothing, the third finds it.
        #expect(takes == 3)
    }

    /// A take that only moves the read position past events of other topics has that written (the
    /// committer is told), not left until some other change.
    @Test func aTakeThatOnlyMovesPastOtherTopicsIsCommitted() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        for index in 0..<5 { try await fixture.store("block.new", id: "b\(index)") }
        let (group, member) = try fixture.groups.join(
            group: "orders", topics: [try TopicPattern("order.*")], start: .earliest, subscription: { 1 },
            maxInFlight: nil, ackWaitMs: nil)
        try await waitUntil { group.stateVersion.committed == group.stateVersion.current }
        let before = group.stateVersion.current
        #expect(try group.take(member, maximum: 10).isEmpty)
        #expect(group.stateVersion.current > before)
        try await waitUntil { group.stateVersion.committed == group.stateVersion.current }
        #expect(group.lag().first?.committed == 5)
    }

    /// An event a member sent to the dead-letter queue (`nack` with `dead_letter`) that the broker stopped
    /// before the queue had it goes to the queue after the restart, not to a consumer again: the state its
    /// `ok` waited for says it is out of attempts. (It said one attempt of four, and was delivered again.)
    @Test func aDeadLetterNotYetInTheQueueAtARestartGoesThereNotToAConsumer() async throws {
        let fixture = try GroupFixture(partitions: 1)
        try await fixture.store("tx", id: "refused")
        let group = try fixture.group("g")
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let taken = try group.take(member, maximum: 10)
        #expect(taken.map(\.eventID) == ["refused"])
        // The queue cannot take it (as if the broker stopped first): it stays pending, marked for the queue.
        group.deadLetters.close()
        let answer = group.nack(member, seq: taken[0].seq, delayMs: nil, deadLetter: true)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(answer.version) { continuation.resume(with: $0) }
        }
        let reopened = try fixture.reopened()
        defer { reopened.close() }
        let again = try reopened.group("g")
        let newMember = again.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        #expect(try again.take(newMember, maximum: 10).isEmpty)
        try await waitUntil { again.deadLetterCount == 1 }
        let letter = try EventEnvelope(
            json: try #require(try again.listDeadLetters(limit: 10).first).bytes, form: .delivered)
        #expect(letter.eventID == "refused")
    }

    /// A deleted group's directory left behind by a stop during the deletion (renamed, not yet removed) is
    /// removed at the next start, and never loaded as a group.
    @Test func aDeletionCutShortIsFinishedAtTheNextStart() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        _ = try fixture.group("left")
        fixture.groups.close()
        fixture.log.close()
        let groups = fixture.directory.path + "/groups"
        try FileManager.default.moveItem(atPath: groups + "/left", toPath: groups + "/.deleted-left-1f")
        let reopened = try fixture.reopenedAfterClose()
        #expect(reopened.groups.all.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: groups).isEmpty)
        reopened.groups.close()
        reopened.log.close()
    }

    /// A `from` past the end of a partition (an offset beyond its last event, a time after it) starts at its
    /// end, as `latest`: the events stored later reach the group, none is passed over unseen, and the lag
    /// counts them. (An offset of 100 used to be taken as it was: the events up to it skipped, the lag 0.)
    @Test func aStartPastTheEndIsTheEnd() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        for index in 0..<3 { try await fixture.store("tx", id: "e\(index)") }
        let groups = [
            try fixture.group("offset", from: .offset(100)),
            try fixture.group("time", from: .time(fixture.time.wall + 3_600_000)),
        ]
        for group in groups {
            #expect(group.lag() == [PartitionLag(partition: 0, committed: 3, head: 3, oldestUnackedAgeMs: nil)])
        }
        try await fixture.store("tx", id: "later")
        for group in groups {
            #expect(group.lag().first?.committed == 3)
            #expect(group.lag().first?.head == 4)
            let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
            #expect(try group.take(member, maximum: 10).map(\.eventID) == ["later"])
        }
    }

    /// Events retention deleted before the group got to them are not lag: the committed offset shown starts
    /// at the partition's first event, and the oldest age is that event's.
    @Test func eventsDeletedByRetentionAreNotCountedAsLag() async throws {
        let fixture = try GroupFixture(partitions: 1, segmentBytes: 400)
        defer { fixture.close() }
        for index in 0..<20 {
            try await fixture.store("tx", id: "e\(index)")
            fixture.time.advance(1000)
        }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        #expect(try group.take(member, maximum: 3).map(\.offset) == [0, 1, 2])
        _ = try fixture.log.deleteSegments(partition: 0, before: 15)
        let start = fixture.log.bounds(partition: 0).start
        #expect(start > 3)
        let first = try #require(try fixture.log.read(partition: 0, from: start, maximumRecords: 1).first)
        #expect(
            group.lag() == [
                PartitionLag(
                    partition: 0, committed: start, head: 20,
                    oldestUnackedAgeMs: fixture.time.wall - first.timestamp)
            ])
    }

    @Test func aGroupResumesAfterARestartExactlyAfterWhatWasAcknowledged() async throws {
        var fixture = try GroupFixture(partitions: 2)
        for index in 0..<6 { try await fixture.store("tx", id: "e\(index)", partition: index % 2) }
        var group = try fixture.group()
        var member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let taken = try group.take(member, maximum: 10)
        #expect(taken.count == 6)
        // Acknowledged: e0, e1, e3 (partition 0: offsets 0, 1 = e0, e2, e4; partition 1: e1, e3, e5).
        let acknowledged = Set(["e0", "e1", "e3"])
        let answer = group.ack(member, seqs: taken.filter { acknowledged.contains($0.eventID) }.map(\.seq))
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(answer.version) { continuation.resume(with: $0) }
        }
        fixture = try fixture.reopened()
        defer { fixture.close() }
        group = try #require(fixture.groups.group(named: "g"))
        #expect(group.lag().map(\.committed) == [1, 2])
        try await fixture.store("tx", id: "e6", partition: 0)
        member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let resumed = try group.take(member, maximum: 10)
        #expect(Set(resumed.map(\.eventID)) == ["e2", "e4", "e5", "e6"])
        #expect(resumed.filter { $0.eventID != "e6" }.allSatisfy { $0.attempt == 2 })
        #expect(resumed.first { $0.eventID == "e6" }?.attempt == 1)
    }

    /// A log that lost records the group had read (cut here at a record's end, as recovery reports
    /// `records_lost`) gives their offsets to the next events: the group goes back to the log's end and
    /// delivers them, instead of waiting past its old position.
    @Test func aGroupResumesAtTheEndOfALogThatLostRecordsItHadRead() async throws {
        var fixture = try GroupFixture(partitions: 1)
        var group = try fixture.group()
        var member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        for index in 0..<5 { try await fixture.store("tx", id: "e\(index)") }
        let taken = try group.take(member, maximum: 10)
        #expect(taken.count == 5)
        // e0-e2 acknowledged, e3 and e4 held.
        let answer = group.ack(member, seqs: taken.prefix(3).map(\.seq))
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(answer.version) { continuation.resume(with: $0) }
        }
        let kept = try fixture.log.read(partition: 0, from: 0, maximumRecords: 3).reduce(0) {
            $0 + Record.headerSize + $1.bytes.count
        }
        fixture.groups.close()
        fixture.log.close()
        // The disk lost e3 and e4.
        let file = try LogFile(path: segmentPath(fixture.directory.path + "/log"), create: false)
        try file.truncate(to: kept)
        fixture = try fixture.reopenedAfterClose()
        defer { fixture.close() }
        #expect(fixture.log.bounds(partition: 0).end == 3)
        group = try #require(fixture.groups.group(named: "g"))
        try await fixture.store("tx", id: "after-loss")
        member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let resumed = try group.take(member, maximum: 10)
        #expect(resumed.map(\.eventID) == ["after-loss"])
        #expect(resumed.first?.attempt == 1)
    }

    /// A commit writes what changed, not every pending event: an ack with 49 others pending appends one
    /// `settled` record to the journal and leaves the state file alone; a restart reads both.
    @Test func anAckIsAppendedToTheJournalNotWrittenWithEveryPendingEvent() async throws {
        var fixture = try GroupFixture(partitions: 1)
        for index in 0..<50 { try await fixture.store("tx", id: "e\(index)") }
        var group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let taken = try group.take(member, maximum: 50)
        #expect(taken.count == 50)
        func committed(_ answer: ConsumerGroup.Answer) async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                group.whenCommitted(answer.version) { continuation.resume(with: $0) }
            }
        }
        try await committed(group.ack(member, seqs: [taken[0].seq]))
        let directory = fixture.directory.path + "/groups/g"
        let state = try Data(contentsOf: URL(fileURLWithPath: directory + "/state.json"))
        let journal = try #require(try LogFile.names(in: directory).first { $0.hasPrefix("journal.") })
        let before = try GroupStateJournal.read(directory + "/" + journal)
        try await committed(group.ack(member, seqs: [taken[7].seq]))
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/state.json")) == state)
        let after = try GroupStateJournal.read(directory + "/" + journal)
        #expect(after.count == before.count + 1)
        #expect(after.last == GroupStateChanges([.settled(partition: 0, offset: taken[7].offset)]))
        fixture = try fixture.reopened()
        defer { fixture.close() }
        group = try #require(fixture.groups.group(named: "g"))
        let again = try group.take(group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil), maximum: 50)
        #expect(again.count == 48)
        #expect(!again.contains { $0.eventID == "e0" || $0.eventID == "e7" })
        #expect(again.allSatisfy { $0.attempt == 2 })
    }

    /// A group's whole-state write (its journal folded into a new state file) holds back only that group's
    /// commits: another group's ack is on disk meanwhile; the first group's ack made during the write is
    /// written after it (to the new journal) and survives a restart.
    @Test func aWholeStateWriteHoldsBackOnlyItsOwnGroupsCommits() async throws {
        var fixture = try GroupFixture(partitions: 1)
        for index in 0..<40 { try await fixture.store("tx", id: "e\(index)") }
        let slow = try fixture.group("slow")
        let quick = try fixture.group("quick")
        let slowMember = slow.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let quickMember = quick.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let slowTaken = try slow.take(slowMember, maximum: 40)
        let quickTaken = try quick.take(quickMember, maximum: 40)
        func committed(_ group: ConsumerGroup, _ answer: ConsumerGroup.Answer) async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                group.whenCommitted(answer.version) { continuation.resume(with: $0) }
            }
        }
        // Acks one at a time until the slow group's journal is past twice its state: the next commit folds it.
        slow.writer.withLock { $0.smallestCompaction = 0 }
        var acked = 0
        while !slow.writer.withLock({ $0.wantsState }) {
            try #require(acked < 30, "the journal never outgrew the state")
            try await committed(slow, slow.ack(slowMember, seqs: [slowTaken[acked].seq]))
            acked += 1
        }
        let entered = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        // Holds the next whole-state write only (it runs under the writer's lock, so the hook stays set).
        let armed = StateLock(true)
        slow.writer.withLock {
            $0.beforeStateWrite = {
                guard
                    armed.withLock({ armed in
                        defer { armed = false }; return armed
                    })
                else { return }
                entered.signal()
                gate.wait()
            }
        }
        let slowDone = StateLock(false)
        slow.whenCommitted(slow.ack(slowMember, seqs: [slowTaken[acked].seq]).version) { result in
            if case .success = result { slowDone.withLock { $0 = true } }
        }
        acked += 1
        let started = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: entered.wait(timeout: .now() + 30)) }
        }
        try #require(started == .success, "the whole-state write never started")
        // Made while the write is held: not in the state being written.
        let duringDone = StateLock(false)
        slow.whenCommitted(slow.ack(slowMember, seqs: [slowTaken[acked].seq]).version) { result in
            if case .success = result { duringDone.withLock { $0 = true } }
        }
        acked += 1
        let quickDone = StateLock(false)
        quick.whenCommitted(quick.ack(quickMember, seqs: [quickTaken[0].seq]).version) { result in
            if case .success = result { quickDone.withLock { $0 = true } }
        }
        // The other group's commit completes while this group's state write is held (a wait that never ends
        // is the suite's time limit).
        try await waitUntil { quickDone.withLock { $0 } }
        #expect(!slowDone.withLock { $0 })
        #expect(!duringDone.withLock { $0 })
        gate.signal()
        try await waitUntil { duringDone.withLock { $0 } }
        #expect(slowDone.withLock { $0 })
        let journals = try LogFile.names(in: fixture.directory.path + "/groups/slow").filter {
            $0.hasPrefix("journal.")
        }
        #expect(journals.count == 1)
        fixture = try fixture.reopened()
        defer { fixture.close() }
        let again = try #require(fixture.groups.group(named: "slow"))
        let left = try again.take(again.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil), maximum: 40)
        #expect(left.count == 40 - acked)
        #expect(Set(left.map(\.eventID)).isDisjoint(with: slowTaken.prefix(acked).map(\.eventID)))
    }

    @Test func lagCountsEventsAfterTheCommittedOffsetAndTheAgeOfTheOldestUnacknowledged() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group()
        try await fixture.store("tx", id: "a")
        fixture.time.advance(5000)
        try await fixture.store("tx", id: "b")
        fixture.time.advance(1000)
        // Nothing delivered yet: the oldest event not acknowledged is `a`, 6 s old.
        #expect(group.lag() == [PartitionLag(partition: 0, committed: 0, head: 2, oldestUnackedAgeMs: 6000)])
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let taken = try group.take(member, maximum: 10)
        _ = group.ack(member, seqs: [taken[0].seq])
        #expect(group.lag() == [PartitionLag(partition: 0, committed: 1, head: 2, oldestUnackedAgeMs: 1000)])
        #expect(group.lag().first?.lag == 1)
    }

    @Test func aMemberIsWokenWhenItsPartitionGetsANewEvent() async throws {
        let fixture = try GroupFixture(partitions: 1)
        defer { fixture.close() }
        let group = try fixture.group()
        let member = group.join(subscription: 1, maxInFlight: nil, ackWaitMs: nil)
        let (woken, continuation) = AsyncStream<Void>.makeStream()
        member.onWake { continuation.yield() }
        #expect(try group.take(member, maximum: 10).isEmpty)
        try await fixture.store("tx", id: "new")
        var iterator = woken.makeAsyncIterator()
        _ = await iterator.next()
        #expect(try group.take(member, maximum: 10).map(\.eventID) == ["new"])
    }
}

/// Waits, yielding, until `condition` holds (the test's time limit ends a wait that never does).
func waitUntil(_ condition: () -> Bool) async throws {
    while !condition() {
        try await Task.sleep(for: .milliseconds(2))
    }
}
