import Foundation
import HeraldCore
import Testing

@testable import HeraldLog
@testable import HeraldServer

/// PROTOCOL.md §4.2 over the socket: durable subscriptions, acknowledgements, redelivery, dead letters and
/// resuming after a restart.
@Suite(.timeLimit(.minutes(3)))
struct DurableSubscriptionTests {
    /// A broker storing `tx` events only (so the broker's own events take no offsets).
    static func start(
        directory: String? = nil, _ configure: @escaping (inout HeraldConfiguration) -> Void = { _ in }
    ) async throws -> TestBroker {
        try await TestBroker.start(durable: true) {
            if let directory { $0.dataDirectory = directory }
            $0.log.persist = ["tx"]
            $0.log.partitions = 2
            configure(&$0)
        }
    }

    /// Publishes `tx` events with the given ids and keys, each confirmed, from a connection of its own.
    static func publish(_ ids: [String], key: @escaping (String) -> String = { $0 }, to broker: TestBroker)
        async throws
    {
        try await broker.withModule("producer") { (client: inout Conversation) async throws in
            for id in ids {
                let reply = try await client.request(
                    #"{"op":"publish","id":"\#(id)","event":{"event_type":"tx","key":"\#(key(id))","event_id":"\#(id)","payload":{}}}"#
                )
                #expect(reply?.contains(#""duplicate":false"#) == true, "\(reply ?? "closed")")
            }
        }
    }

    /// The next `event` frame: its seq, attempt and event id, checking the header's key order (§2.3).
    static func nextEvent(_ client: inout Conversation, subscription: Int) async throws -> (
        seq: Int, attempt: Int, eventID: String
    ) {
        let frame = try #require(try await client.receive())
        let header = try #require(
            frame.wholeMatch(of: /\{"op":"event","subscription":(\d+),"seq":(\d+),"attempt":(\d+),"event":(.*)\}/))
        #expect(Int(header.1) == subscription)
        let envelope = try EventEnvelope(json: Array(header.4.utf8), form: .delivered)
        #expect(envelope.offset != nil && envelope.partition != nil)
        return (Int(header.2)!, Int(header.3)!, envelope.eventID)
    }

    @Test func aGroupDeliversStoredEventsWithAttemptAndAnAckWithAnIDIsAnsweredOnceCommitted() async throws {
        let broker = try await Self.start()
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            try await Self.publish(["before"], to: broker)
            #expect(
                try await client.request(
                    #"{"op":"subscribe","id":1,"topics":["tx"],"group":"indexers","from":"earliest"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            let first = try await Self.nextEvent(&client, subscription: 1)
            #expect(first.seq == 1 && first.attempt == 1 && first.eventID == "before")
            #expect(
                try await client.request(#"{"op":"ack","id":2,"subscription":1,"seq":[1]}"#) == #"{"op":"ok","id":2}"#)
            // A later event reaches the member once it is durable.
            try await client.send(
                #"{"op":"publish","event":{"event_type":"tx","key":"k","event_id":"after","payload":{}}}"#)
            let second = try await Self.nextEvent(&client, subscription: 1)
            #expect(second.seq == 2 && second.attempt == 1 && second.eventID == "after")
            #expect(
                try await client.request(#"{"op":"ack","id":3,"subscription":1,"seq":[2]}"#) == #"{"op":"ok","id":3}"#)
        }
        let group = try #require(broker.broker.groups?.group(named: "indexers"))
        #expect(group.lag().reduce(0) { $0 + $1.lag } == 0)
        // The committed offsets are in the group's state file.
        let state = try String(contentsOfFile: broker.directory + "/groups/indexers/state.json", encoding: .utf8)
        #expect(state.contains(#""pending":[]"#))
        try await broker.stop()
    }

    /// The log writes events nobody waits for after a linger (docs/storage.md, "Lingering"); a member that
    /// has taken everything is one who waits, so its next event is written — and delivered — at once.
    @Test func aCaughtUpMemberIsNotHeldBackByTheLogsLinger() async throws {
        // The longest linger there is: the event arrives well within it only if the member's wait cut it.
        let broker = try await Self.start { $0.log.lingerMs = 60_000 }
        let log = try #require(broker.broker.log)
        #expect(log.configuration.lingerMilliseconds == 60_000)
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"indexers"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            // Its first take found nothing in either partition.
            try await waitUntil { log.partitions.allSatisfy(\.isReaderWaiting) }
            let published = ContinuousClock.now
            try await client.send(
                #"{"op":"publish","event":{"event_type":"tx","key":"k","event_id":"unconfirmed","payload":{}}}"#)
            let event = try await Self.nextEvent(&client, subscription: 1)
            #expect(event.seq == 1 && event.eventID == "unconfirmed")
            #expect(ContinuousClock.now - published < .seconds(30), "it waited for the linger")
        }
        try await broker.stop()
    }

    /// After `bye` nothing but the owed replies follows (docs/protocol.md): an ack sent with it frees room in
    /// `max_in_flight`, and the member takes no new events it would never acknowledge — they would each
    /// count a failed attempt when it leaves.
    @Test func aMemberSayingByeTakesNoMoreEventsAfterItsLastAck() async throws {
        let broker = try await Self.start()
        try await Self.publish(["a", "b", "c", "d", "e"], to: broker)
        var acknowledged: Set<String> = []
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(
                    #"{"op":"subscribe","id":1,"topics":["tx"],"group":"indexers","from":"earliest","max_in_flight":2}"#
                )
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            var seqs: [Int] = []
            for _ in 0..<2 {
                let event = try await Self.nextEvent(&client, subscription: 1)
                seqs.append(event.seq)
                acknowledged.insert(event.eventID)
            }
            // The ack and the bye in one write: both are handled before any delivery could run between them.
            try await client.sendRaw(
                lengthPrefixed(Array(#"{"op":"ack","id":2,"subscription":1,"seq":\#(seqs)}"#.utf8))
                    + lengthPrefixed(Array(#"{"op":"bye"}"#.utf8)))
            var after: [String] = []
            while let frame = try await client.receive() { after.append(frame) }
            #expect(after == [#"{"op":"ok","id":2}"#])
        }
        // The three left are first deliveries for the next member.
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            let ok = try #require(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"indexers"}"#))
            let subscription = try #require(ok.firstMatch(of: /"subscription":(\d+)/).flatMap { Int($0.1) })
            var attempts: [String: Int] = [:]
            for _ in 0..<3 {
                let event = try await Self.nextEvent(&client, subscription: subscription)
                attempts[event.eventID] = event.attempt
            }
            #expect(Set(attempts.keys) == Set(["a", "b", "c", "d", "e"]).subtracting(acknowledged))
            #expect(attempts.values.allSatisfy { $0 == 1 }, "\(attempts)")
        }
        try await broker.stop()
    }

    @Test func aGroupMemberIsASubscriberOfWhatItsGroupTakes() async throws {
        let broker = try await Self.start()
        try await broker.withModule("archiver") { (client: inout Conversation) async throws in
            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"archive"}"#)
            #expect(
                try await client.request(#"{"op":"subscribers","id":2,"event_type":"tx"}"#)
                    == #"{"op":"ok","id":2,"subscribers":["archiver"]}"#)
            #expect(
                try await client.request(#"{"op":"subscribers","id":3,"event_type":"block.new"}"#)
                    == #"{"op":"ok","id":3,"subscribers":[]}"#)
            _ = try await client.request(#"{"op":"unsubscribe","id":4,"subscription":1}"#)
            #expect(
                try await client.request(#"{"op":"subscribers","id":5,"event_type":"tx"}"#)
                    == #"{"op":"ok","id":5,"subscribers":[]}"#)
        }
        try await broker.stop()
    }

    @Test func aMemberThatSaysByeLeavesItsGroupAtOnce() async throws {
        let broker = try await Self.start()
        try await broker.withModule("stayer") { (stayer: inout Conversation) async throws in
            _ = try await stayer.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"pair"}"#)
            try await broker.withModule("leaver") { (leaver: inout Conversation) async throws in
                _ = try await leaver.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"pair"}"#)
                let group = try #require(broker.broker.groups?.group(named: "pair"))
                #expect(group.memberModules == ["leaver", "stayer"])
                #expect(try await leaver.request(#"{"op":"bye","id":2}"#) == #"{"op":"ok","id":2}"#)
                #expect(try await leaver.receive() == nil)
                // Its socket is still open on this side, but it has left: its partitions are the other's.
                #expect(group.memberModules == ["stayer"])
            }
        }
        try await broker.stop()
    }

    @Test func aBrokerThatStoresNothingRefusesGroups() async throws {
        let broker = try await Self.start { $0.log.persist = [] }
        try await broker.withModule("archiver") { (client: inout Conversation) async throws in
            let reply = try #require(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"archive"}"#))
            #expect(reply.contains(#""code":"invalid_request""#))
            #expect(reply.contains("log.persist = []"))
        }
        #expect(broker.broker.groups?.group(named: "archive") == nil)
        try await broker.stop()
    }

    @Test func whatADepartedMemberDidNotAcknowledgeGoesToAnotherMember() async throws {
        let broker = try await Self.start()
        try await broker.withModule("worker") { (stayer: inout Conversation) async throws in
            #expect(
                try await stayer.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"workers"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            try await broker.withModule("worker") { (leaver: inout Conversation) async throws in
                #expect(
                    try await leaver.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"workers"}"#)
                        == #"{"op":"ok","id":1,"subscription":2}"#)
                // Keys "a" and "b" fall in different partitions of two: one per member.
                let log = try #require(broker.broker.log)
                #expect(log.partition(forKey: "a") != log.partition(forKey: "b"))
                try await Self.publish(["a", "b"], to: broker)
                var seen = [try await Self.nextEvent(&stayer, subscription: 1).eventID]
                seen.append(try await Self.nextEvent(&leaver, subscription: 2).eventID)
                #expect(Set(seen) == ["a", "b"])
            }
            // The leaver closed without acknowledging: its event comes to the stayer, attempt 2.
            let redelivered = try await Self.nextEvent(&stayer, subscription: 1)
            #expect(redelivered.attempt == 2)
            #expect(redelivered.seq == 2)
            #expect(["a", "b"].contains(redelivered.eventID))
        }
        try await broker.stop()
    }

    @Test func anUnacknowledgedEventIsRedeliveredAfterAckWaitAndTheBackoff() async throws {
        let broker = try await Self.start {
            $0.groups.ackWaitMs = 200
            $0.groups.backoffMs = [100]
            $0.groups.maxDeliver = 2
        }
        try await broker.withModule("slow") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(
                    #"{"op":"subscribe","id":1,"topics":["tx"],"group":"slow","ack_wait_ms":100}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            let started = ContinuousClock.now
            try await client.send(#"{"op":"publish","event":{"event_type":"tx","event_id":"x","payload":{}}}"#)
            #expect(try await Self.nextEvent(&client, subscription: 1).attempt == 1)
            let again = try await Self.nextEvent(&client, subscription: 1)
            #expect(again.attempt == 2 && again.eventID == "x")
            // The member's ack_wait_ms (100) plus the backoff (100), not the group's 200.
            #expect(ContinuousClock.now - started >= .milliseconds(200))
            // After max_deliver attempts it goes to the dead-letter queue instead.
            let group = try #require(broker.broker.groups?.group(named: "slow"))
            try await waitUntil { group.deadLetterCount == 1 }
            let letter = try EventEnvelope(
                json: try #require(try group.listDeadLetters(limit: 100).first).bytes, form: .delivered)
            #expect(letter.eventID == "x")
            #expect(letter.metadata["dead_letter_reason"] == "max_deliver")
            #expect(letter.metadata["attempts"] == "2")
        }
        try await broker.stop()
    }

    @Test func aNackIsRedeliveredAfterItsDelayOrDeadLettered() async throws {
        let broker = try await Self.start()
        try await broker.withModule("picky") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"picky"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            try await Self.publish(["retry", "reject"], key: { _ in "same" }, to: broker)
            let first = try await Self.nextEvent(&client, subscription: 1)
            let second = try await Self.nextEvent(&client, subscription: 1)
            #expect([first.eventID, second.eventID] == ["retry", "reject"])
            // The `ok` comes once the group state is written; the redelivery after 10 ms may come first.
            try await client.send(#"{"op":"nack","id":2,"subscription":1,"seq":1,"delay_ms":10}"#)
            var frames = [try #require(try await client.receive()), try #require(try await client.receive())]
            let ok = try #require(frames.firstIndex(of: #"{"op":"ok","id":2}"#))
            frames.remove(at: ok)
            let header = try #require(frames.first?.firstMatch(of: /"seq":(\d+),"attempt":(\d+)/))
            #expect(header.1 == "3" && header.2 == "2")
            #expect(frames.first?.contains(#""event_id":"retry""#) == true)
            try await client.send(#"{"op":"nack","subscription":1,"seq":2,"dead_letter":true}"#)
            #expect(
                try await client.request(#"{"op":"ack","id":3,"subscription":1,"seq":[3]}"#) == #"{"op":"ok","id":3}"#)
            let group = try #require(broker.broker.groups?.group(named: "picky"))
            try await waitUntil { group.deadLetterCount == 1 }
            let letter = try EventEnvelope(
                json: try #require(try group.listDeadLetters(limit: 100).first).bytes, form: .delivered)
            #expect(letter.eventID == "reject")
            #expect(letter.metadata["dead_letter_reason"] == "nack")
        }
        try await broker.stop()
    }

    @Test func aGroupResumesAfterARestartAfterItsLastAcknowledgedEvent() async throws {
        let directory = NSTemporaryDirectory() + "herald-groups-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var broker = try await Self.start(directory: directory)
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"resume"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            try await Self.publish(["one", "two", "three"], key: { _ in "k" }, to: broker)
            for expected in ["one", "two", "three"] {
                #expect(try await Self.nextEvent(&client, subscription: 1).eventID == expected)
            }
            #expect(
                try await client.request(#"{"op":"ack","id":2,"subscription":1,"seq":[1,2]}"#) == #"{"op":"ok","id":2}"#
            )
        }
        broker.beginStopping()
        try await broker.stoppedKeepingDirectory()
        broker = try await Self.start(directory: directory)
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            try await Self.publish(["four"], key: { _ in "k" }, to: broker)
            // `from` does not apply to a group that exists.
            #expect(
                try await client.request(
                    #"{"op":"subscribe","id":1,"topics":["tx"],"group":"resume","from":"earliest"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            let resumed = try await Self.nextEvent(&client, subscription: 1)
            #expect(resumed.eventID == "three" && resumed.attempt == 2)
            let next = try await Self.nextEvent(&client, subscription: 1)
            #expect(next.eventID == "four" && next.attempt == 1)
        }
        try await broker.stop()
    }

    /// A subscription's deliveries start once its `ok` is written, not once every reply of its read is: a
    /// live subscribe followed, in the same read, by an `ack` with an `id` (answered once the group's state is
    /// written) gets its events while that write is held up. They waited for it.
    @Test func aNewSubscriptionsEventsDoNotWaitForALaterReplyOfItsRead() async throws {
        let broker = try await Self.start()
        try await broker.withModule("worker") { (worker: inout Conversation) async throws in
            #expect(
                try await worker.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"g"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            try await Self.publish(["a"], to: broker)
            let delivered = try await Self.nextEvent(&worker, subscription: 1)
            // The group's state writer held, as by a slow disk: the ack's reply cannot come.
            let group = try #require(broker.broker.groups?.group(named: "g"))
            let release = await group.holdStateWriter()
            defer { release() }
            try await worker.sendRaw(
                lengthPrefixed(Array(#"{"op":"subscribe","id":2,"topics":["live.#"]}"#.utf8))
                    + lengthPrefixed(Array(#"{"op":"ack","id":3,"subscription":1,"seq":[\#(delivered.seq)]}"#.utf8)))
            #expect(try await worker.receive() == #"{"op":"ok","id":2,"subscription":2}"#)
            try await broker.withModule("node") { (node: inout Conversation) async throws in
                #expect(
                    try await node.request(#"{"op":"publish","id":1,"event":{"event_type":"live.x","event_id":"l"}}"#)
                        == #"{"op":"ok","id":1,"event_id":"l","duplicate":false}"#)
            }
            #expect(try await worker.receive()?.hasPrefix(#"{"op":"event","subscription":2,"seq":1,"#) == true)
            release()
            #expect(try await worker.receive() == #"{"op":"ok","id":3}"#)
        }
        try await broker.stop()
    }

    @Test func badDurableRequestsGetClearErrorsAndChangeNothing() async throws {
        let broker = try await Self.start()
        try await broker.withModule("confused") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"g"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            #expect(
                try await client.request(#"{"op":"subscribe","id":2,"topics":["tx","block.#"],"group":"g"}"#)
                    == #"{"op":"error","id":2,"code":"invalid_request","message":"topics: group 'g' reads topics [\"tx\"]; a member must subscribe with exactly those"}"#
            )
            #expect(
                try await client.request(#"{"op":"subscribe","id":3,"topics":["tx"]}"#)
                    == #"{"op":"ok","id":3,"subscription":2}"#)
            #expect(
                try await client.request(#"{"op":"ack","id":4,"subscription":2,"seq":[1]}"#)
                    == #"{"op":"error","id":4,"code":"invalid_request","message":"subscription: 2 is a live subscription; only durable (group) deliveries are acknowledged"}"#
            )
            #expect(
                try await client.request(#"{"op":"nack","id":5,"subscription":99,"seq":1}"#)
                    == #"{"op":"error","id":5,"code":"unknown_subscription","message":"subscription: 99 is not open"}"#)
            try await Self.publish(["e"], to: broker)
            // The live subscription's copy and the group's delivery, in either order.
            var frames = [try #require(try await client.receive()), try #require(try await client.receive())]
            frames.sort()
            #expect(frames[0].hasPrefix(#"{"op":"event","subscription":1,"seq":1,"attempt":1,"#))
            #expect(frames[1].hasPrefix(#"{"op":"event","subscription":2,"seq":1,"event""#))
            #expect(
                try await client.request(#"{"op":"ack","id":6,"subscription":1,"seq":[1,7]}"#)
                    == #"{"op":"error","id":6,"code":"invalid_request","message":"seq: 7 never delivered on subscription 1"}"#
            )
            #expect(broker.broker.groups?.group(named: "g")?.lag().reduce(0) { $0 + $1.lag } == 1)
            #expect(
                try await client.request(#"{"op":"ack","id":7,"subscription":1,"seq":[1]}"#) == #"{"op":"ok","id":7}"#)
        }
        try await broker.stop()
        let memory = try await TestBroker.start()
        try await memory.withModule("confused") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"g"}"#)
                    == #"{"op":"error","id":1,"code":"invalid_request","message":"group: this broker keeps no durable log, so it has no consumer groups"}"#
            )
        }
        try await memory.stop()
    }
}
