import Foundation
import HeraldClient
import HeraldCore
import Testing

@testable import HeraldServer

/// `herald replay`, `herald groups`, `herald dlq` and `herald modules` (PROTOCOL.md §8) over a real broker's
/// HTTP API.
@Suite(.timeLimit(.minutes(3)))
struct AdminCLITests {
    static func start() async throws -> TestBroker {
        try await TestBroker.start(durable: true, http: true) {
            $0.log.persist = ["tx.#"]
            $0.log.partitions = 2
        }
    }

    /// Runs `herald ARGUMENTS --http <the broker's>` and returns its status, output and errors.
    static func run(_ arguments: [String], _ broker: TestBroker) async throws -> (Int32, String, String) {
        let run = try HeraldRun.start(arguments + ["--http", broker.gateway!.address])
        let (status, output, errors) = await run.finishWithOutput()
        return (status, output, errors)
    }

    /// A page looks at 100 000 records at most: a rare event after more than that many others comes on a
    /// later page, after empty ones, and the replay does not stop at the first empty page.
    @Test func replayGoesOnPastEmptyPagesToTheEndOfTheLog() async throws {
        let broker = try await Self.start()
        let log = try #require(broker.broker.log)
        let records = Broker.replayScanBudget + 2_000
        // On a thread of its own: seconds of appending would hold one of the few threads every test's
        // tasks share.
        try await onOwnThread {
            for index in 0..<records {
                _ = try log.append(partition: 0, timestamp: Int64(index)) { offset in
                    var fields = EnvelopeFields(eventType: index == records - 1 ? "tx.rare" : "tx.common")
                    fields.eventID = "r\(index)"
                    fields.offset = offset
                    fields.partition = 0
                    return EventEnvelope(sealing: fields).json
                }
            }
        }
        try await log.flush()
        let (status, output, _) = try await Self.run(["replay", "tx.rare"], broker)
        #expect(status == 0)
        #expect(output.contains(#""event_id":"r\#(records - 1)""#))
        try await broker.stop()
    }

    @Test func replayPrintsEveryStoredEventFollowingTheCursor() async throws {
        let broker = try await Self.start()
        let batch = (0..<5).map { #"{"event_type":"tx.\#($0 % 2 == 0 ? "even" : "odd")","event_id":"e\#($0)"}"# }
        #expect(
            try await broker.http().post("/v1/events", json: #"{"events":["# + batch.joined(separator: ",") + "]}")
                .status == 200)
        let (status, output, _) = try await Self.run(["replay", "tx.#"], broker)
        #expect(status == 0)
        let ids = output.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["event_id"] as? String
        }
        #expect(Set(ids) == ["e0", "e1", "e2", "e3", "e4"] && ids.count == 5)
        let (_, odd, _) = try await Self.run(["replay", "tx.odd", "--limit", "1"], broker)
        #expect(odd.split(separator: "\n").count == 1 && odd.contains(#""event_type":"tx.odd""#))
        // Printed as stored: the payload byte for byte, not rewritten (keys sorted, 2.50 as 2.5, 1e3 as 1000).
        let raw = #"{"z":1,"a":2.50,"f":1e3,"s":"\u00e9/"}"#
        let event = #"{"event_type":"tx.raw","event_id":"raw","payload":\#(raw)}"#
        #expect(try await broker.http().post("/v1/events", json: event).status == 200)
        let (_, stored, _) = try await Self.run(["replay", "tx.raw"], broker)
        #expect(stored.contains(#""payload":\#(raw)"#))
        let (failed, _, errors) = try await Self.run(["replay", "tx..x"], broker)
        #expect(failed != 0)
        #expect(errors.hasPrefix("herald: invalid_topic: topic:"))
        try await broker.stop()
    }

    @Test func groupsDeadLettersAndModules() async throws {
        let broker = try await Self.start()
        try await broker.withModule("worker") { (client: inout Conversation) async throws in
            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["tx.#"],"group":"workers"}"#)
            _ = try await broker.http().post(
                "/v1/events", json: #"{"event_type":"tx","event_id":"bad","payload":{"z":1,"a":2.50}}"#)
            #expect(try await client.receive()?.contains(#""event_id":"bad""#) == true)
            try await client.send(#"{"op":"nack","subscription":1,"seq":1,"dead_letter":true}"#)
            let group = try #require(broker.broker.groups?.group(named: "workers"))
            try await waitUntil { group.deadLetterCount == 1 }

            let (status, table, _) = try await Self.run(["groups"], broker)
            #expect(status == 0)
            let lines = table.split(separator: "\n")
            #expect(lines.first?.hasPrefix("group    members  dead_letters  partition") == true)
            #expect(lines.first?.hasSuffix("oldest_unacked_age_ms") == true)
            #expect(lines.count == 3 && lines.dropFirst().allSatisfy { $0.hasPrefix("workers  1        1 ") })
            let (_, json, _) = try await Self.run(["groups", "--json"], broker)
            #expect(json.contains(#""name":"workers""#))

            let (_, letters, _) = try await Self.run(["dlq", "workers"], broker)
            #expect(letters.contains(#""event_id":"bad""#) && letters.contains(#""dead_letter_reason":"nack""#))
            #expect(letters.contains(#""payload":{"z":1,"a":2.50}"#))
            let (_, replayed, _) = try await Self.run(["dlq", "workers", "replay"], broker)
            #expect(replayed == "replayed 1 dead letters into workers; kept 0\n")
            #expect(try await client.receive()?.contains(#""attempt":1"#) == true)
            let (_, purged, _) = try await Self.run(["dlq", "workers", "purge", "--json"], broker)
            #expect(purged == #"{"purged":0}"# + "\n")
            let (missing, _, errors) = try await Self.run(["dlq", "ghost"], broker)
            #expect(missing != 0 && errors == "herald: not_found: group: 'ghost' does not exist\n")

            let (_, modules, _) = try await Self.run(["modules"], broker)
            #expect(modules.split(separator: "\n").first?.hasSuffix("loaded_at                 problem") == true)
            #expect(
                modules.split(separator: "\n").last?.hasPrefix("worker  1.0      external  healthy  -    0") == true)
            let (refused, _, why) = try await Self.run(["modules", "reload", "worker"], broker)
            #expect(
                refused != 0 && why == "herald: not_ready: reload: the module supervisor is not running\n")
        }
        try await broker.stop()
    }

    /// `herald groups delete` (`DELETE /v1/groups/{group}`): refused while the group has a member (409
    /// `group_in_use`), then the group, its lag series in `/metrics` and its files are gone, and a second
    /// delete is 404.
    @Test func aGroupWithNoMemberIsDeleted() async throws {
        let broker = try await Self.start()
        try await broker.withModule("worker") { (client: inout Conversation) async throws in
            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["tx.#"],"group":"stale"}"#)
            let (busy, _, refusal) = try await Self.run(["groups", "delete", "stale"], broker)
            #expect(busy == 2)
            #expect(
                refusal
                    == "herald: group_in_use: group 'stale' has 1 member; a group is deleted once none is left\n")
        }
        try await waitUntil { broker.broker.groups?.group(named: "stale")?.memberCount == 0 }
        #expect(try await broker.http().get("/metrics").text.contains(#"group="stale""#))
        let (status, output, _) = try await Self.run(["groups", "delete", "stale"], broker)
        #expect(status == 0)
        #expect(output == "deleted group stale\n")
        #expect(broker.broker.groups?.group(named: "stale") == nil)
        #expect(!FileManager.default.fileExists(atPath: broker.broker.configuration.groupsDirectory + "/stale"))
        #expect(try await broker.http().get("/v1/groups").text == #"{"groups":[]}"#)
        #expect(try await !broker.http().get("/metrics").text.contains(#"group="stale""#))
        let again = try await broker.http().delete("/v1/groups/stale")
        #expect(again.status == 404)
        let (usage, _, why) = try await Self.run(["groups", "delete"], broker)
        #expect(usage == 64 && why == "herald: delete needs the GROUP to delete\n")
        try await broker.stop()
    }

    @Test func anUnreachableBrokerIsOneLine() async throws {
        let run = try HeraldRun.start(["groups", "--http", "127.0.0.1:1"])
        let (status, _, errors) = await run.finishWithOutput()
        #expect(status != 0)
        #expect(errors == "herald: cannot reach the broker at 127.0.0.1:1: Connection refused\n")
        #expect(errors.split(separator: "\n").count == 1)
    }
}
