import Foundation
import HeraldLog
import Synchronization
import Testing

@testable import HeraldServer

/// PROTOCOL.md §4.3: an `event_id` accepted within the window is not stored or delivered again.
@Suite(.timeLimit(.minutes(3)))
struct DedupTests {
    @Test func theWindowAcceptsAnIdOnceUntilItExpires() {
        let window = DedupWindow(windowMilliseconds: 1_000)
        var accepted = 0
        let first = LogPosition(partition: 3, offset: 41)
        #expect(
            window.check("e-1", now: 10_000) {
                accepted += 1; return first
            } == nil)
        #expect(
            window.check("e-1", now: 10_999) {
                accepted += 1; return nil
            } == .init(position: first, expires: 11_000))
        #expect(
            window.check("e-2", now: 10_999) {
                accepted += 1; return nil
            } == nil)
        #expect(accepted == 2)
        // At 11 000 the first has left the window: accepted again, with its new position.
        #expect(
            window.check("e-1", now: 11_000) {
                accepted += 1; return nil
            } == nil)
        #expect(accepted == 3)
        #expect(window.count == 2)
        // Rebuilt entries keep their own expiry; an entry already expired is not kept.
        var batch = DedupWindow.Recollection()
        window.remember("old", position: first, acceptedAt: 9_000, now: 11_000, in: &batch)
        window.remember("recent", position: first, acceptedAt: 10_500, now: 11_000, in: &batch)
        window.putBack(&batch)
        window.finishRebuild()
        #expect(window.check("old", now: 11_000) { nil } == nil)
        #expect(window.check("recent", now: 11_100) { nil }?.position == first)
    }

    @Test func aRebuildFromSeveralPartitionsAtOnceStillExpiresEachIdOnTime() {
        // Partitions are read at the same time, so ids come back out of their acceptance order. One shard, so
        // that the order decides eviction.
        let window = DedupWindow(windowMilliseconds: 100, shardCount: 1)
        var partitionA = DedupWindow.Recollection()
        var partitionB = DedupWindow.Recollection()
        window.remember("late-0", position: nil, acceptedAt: 1_000, now: 1_000, in: &partitionA)
        window.remember("early-7", position: nil, acceptedAt: 900, now: 1_000, in: &partitionB)
        window.remember("middle-23", position: nil, acceptedAt: 910, now: 1_000, in: &partitionB)
        window.putBack(&partitionA)
        window.putBack(&partitionB)
        window.finishRebuild()
        // At 1 050 `early-7` and `middle-23` have left the window, `late-0` has not.
        #expect(window.check("early-7", now: 1_050) { nil } == nil)
        #expect(window.check("late-0", now: 1_050) { nil } != nil)
        // Evicted, not merely refused: `late-0` and the new `early-7` are all the window holds.
        #expect(window.count == 2)
    }

    @Test func anIdPutBackTwiceKeepsItsLaterAcceptance() {
        // Published again after its first copy left the window: both records are in the log.
        let window = DedupWindow(windowMilliseconds: 100, shardCount: 1)
        var partitionA = DedupWindow.Recollection()
        var partitionB = DedupWindow.Recollection()
        let later = LogPosition(partition: 1, offset: 5)
        window.remember("again", position: later, acceptedAt: 990, now: 1_000, in: &partitionB)
        window.remember(
            "again", position: LogPosition(partition: 0, offset: 2), acceptedAt: 905, now: 1_000, in: &partitionA)
        window.putBack(&partitionB)
        window.putBack(&partitionA)
        window.finishRebuild()
        #expect(window.check("again", now: 1_050) { nil }?.position == later)
    }

    @Test func anEventRefusedByAcceptLeavesNothingInTheWindow() throws {
        struct Refused: Error {}
        let window = DedupWindow(windowMilliseconds: 1_000, shardCount: 1)
        #expect(throws: Refused.self) {
            try window.check("e-1", now: 10_000) { () throws(Refused) -> LogPosition? in throw Refused() }
        }
        #expect(window.count == 0)
        // The id was never accepted: its next publish is.
        var accepted = false
        #expect(
            window.check("e-1", now: 10_001) {
                accepted = true; return nil
            } == nil)
        #expect(accepted)
        #expect(window.count == 1)
    }

    @Test func idsAreComparedByteForByte() {
        let window = DedupWindow(windowMilliseconds: 1_000)
        // "é" as one code point and as "e" with a combining accent: equal as Swift strings, two ids here.
        #expect(window.check("caf\u{E9}", now: 0) { nil } == nil)
        #expect(window.check("cafe\u{301}", now: 0) { nil } == nil)
        #expect(window.count == 2)
        // An id put back from the log's bytes is the id a publish checks.
        let position = LogPosition(partition: 1, offset: 7)
        var batch = DedupWindow.Recollection()
        Array("na\u{EF}ve".utf8).withUnsafeBytes {
            window.remember(utf8: $0, position: position, acceptedAt: 0, now: 0, in: &batch)
        }
        window.putBack(&batch)
        window.finishRebuild()
        #expect(window.check("na\u{EF}ve", now: 1) { nil }?.position == position)
    }

    @Test func afterABurstTheWindowGivesBackTheRoomItTook() {
        let window = DedupWindow(windowMilliseconds: 100, shardCount: 1)
        for number in 0..<10_000 { #expect(window.check("burst-\(number)", now: 0) { nil } == nil) }
        #expect(window.slotCount >= 10_000 * 4 / 3)
        // At 200 every id of the burst has left the window.
        #expect(window.check("later", now: 200) { nil } == nil)
        #expect(window.count == 1)
        #expect(window.slotCount <= 64)
        #expect(window.check("burst-7", now: 200) { nil } == nil)
        #expect(window.check("later", now: 201) { nil } != nil)
    }

    @Test func aZeroWindowDeduplicatesNothing() {
        let window = DedupWindow(windowMilliseconds: 0)
        var accepted = 0
        for _ in 0..<3 {
            #expect(
                window.check("same", now: 0) {
                    accepted += 1; return nil
                } == nil)
        }
        #expect(accepted == 3)
    }

    @Test func aRepeatedPublishIsAnsweredDuplicateWithTheFirstOffsetAndDeliveredOnce() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.persist = ["block.#"] }
        let partition = broker.broker.log!.partition(forKey: "5")
        try await broker.withModule("producer") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["block.new.5","mempool.tx"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            let publish =
                #"{"op":"publish","id":2,"event":{"event_type":"block.new","chain_id":5,"event_id":"dup","payload":{}}}"#
            var frames = [try #require(try await client.request(publish)), try #require(try await client.receive())]
            #expect(
                frames.contains(
                    #"{"op":"ok","id":2,"event_id":"dup","duplicate":false,"offset":0,"partition":\#(partition)}"#))
            #expect(frames.contains { $0.hasPrefix(#"{"op":"event","subscription":1,"seq":1,"#) })
            // The same event_id again, even with another payload: not stored, not delivered.
            let again =
                #"{"op":"publish","id":3,"event":{"event_type":"block.new","chain_id":5,"event_id":"dup","payload":{"x":1}}}"#
            #expect(
                try await client.request(again)
                    == #"{"op":"ok","id":3,"event_id":"dup","duplicate":true,"offset":0,"partition":\#(partition)}"#)
            // An event not stored is deduplicated too, and its duplicate's `ok` has no position.
            let mempool = #"{"op":"publish","id":4,"event":{"event_type":"mempool.tx","event_id":"m","payload":{}}}"#
            frames = [try #require(try await client.request(mempool)), try #require(try await client.receive())]
            #expect(frames.contains(#"{"op":"ok","id":4,"event_id":"m","duplicate":false}"#))
            // The next event the subscription gets is seq 2, the mempool event: the duplicate took no seq.
            #expect(
                frames.contains {
                    $0.hasPrefix(#"{"op":"event","subscription":1,"seq":2,"#) && $0.contains(#""event_id":"m""#)
                })
            #expect(
                try await client.request(
                    #"{"op":"publish","id":5,"event":{"event_type":"mempool.tx","event_id":"m","payload":{}}}"#)
                    == #"{"op":"ok","id":5,"event_id":"m","duplicate":true}"#)
            #expect(try await client.request(#"{"op":"ping","id":6}"#) == #"{"op":"pong","id":6}"#)
        }
        #expect(try broker.broker.log!.read(partition: partition, from: 0).count == 1)
        try await broker.stop()
    }

    @Test func theWindowSurvivesARestart() async throws {
        let directory = NSTemporaryDirectory() + "herald-dedup-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Where round 0 stored each spread id (`0,"partition":3}`).
        let places = Mutex<[Int: String]>([:])
        for round in 0..<2 {
            let broker = try await TestBroker.start(durable: true) {
                $0.dataDirectory = directory
                $0.log.persist = ["tx"]
            }
            try await broker.withModule("producer") { (client: inout Conversation) async throws in
                // Ids read back from the log in place: plain ASCII, other UTF-8 (stored as is) and an escape
                // (stored escaped, decoded on the way back).
                for (offset, eventID) in [#"once"#, #"na\u00efve"#, #"quote\"d"#].enumerated() {
                    let reply = try #require(
                        try await client.request(
                            #"{"op":"publish","id":1,"event":{"event_type":"tx","key":"k","event_id":"\#(eventID)","payload":{}}}"#
                        ))
                    #expect(
                        reply.contains(#""duplicate":\#(round == 1),"offset":\#(offset)"#),
                        "\(eventID) in round \(round)")
                }
                // Ids over all the partitions, read back at the same time: each is a duplicate of its first copy,
                // wherever that was stored.
                for number in 0..<24 {
                    let reply = try #require(
                        try await client.request(
                            #"{"op":"publish","id":2,"event":{"event_type":"tx","key":"key-\#(number)","event_id":"spread-\#(number)"}}"#
                        ))
                    let place = try #require(reply.components(separatedBy: #""offset":"#).last)
                    #expect(reply.contains(#""duplicate":\#(round == 1)"#), "spread-\(number) in round \(round)")
                    if round == 0 {
                        places.withLock { $0[number] = place }
                    } else {
                        #expect(place == places.withLock { $0[number] }, "spread-\(number)")
                    }
                }
            }
            broker.beginStopping()
            try await broker.stoppedKeepingDirectory()
        }
    }
}
