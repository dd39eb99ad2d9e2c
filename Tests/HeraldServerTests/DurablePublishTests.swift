import Foundation
import HeraldCore
import HeraldLog
import Synchronization
import Testing

@testable import HeraldServer

/// PROTOCOL.md §4.4 over the socket: what is stored, where, and when a confirmed publish is answered.
@Suite(.timeLimit(.minutes(3)))
struct DurablePublishTests {
    @Test(arguments: [HeraldConfiguration.FsyncPolicy.always, .batch, .never])
    func aConfirmedPublishIsAnsweredWithItsOffsetAndPartitionOnceDurable(
        _ fsync: HeraldConfiguration.FsyncPolicy
    ) async throws {
        // Only blocks are stored, so that the broker's own `module.loaded` takes no offset here.
        let broker = try await TestBroker.start(durable: true) {
            $0.log.fsync = fsync
            $0.log.persist = ["block.#"]
        }
        let log = try #require(broker.broker.log)
        // chain_id 1 is the key "1": FNV-1a 64 mod 8 = 4.
        let partition = log.partition(forKey: "1")
        #expect(partition == 4)
        try await broker.withModule("producer") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["block.new.*"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            for index in 0..<3 {
                let reply = try await client.request(
                    #"{"op":"publish","id":\#(10 + index),"event":{"event_type":"block.new","chain_id":1,"event_id":"b-\#(index)","payload":{"n":\#(index)}}}"#
                )
                // The live delivery and the `ok` may come in either order; the `ok` only once durable.
                var frames = [try #require(reply)]
                frames.append(try #require(try await client.receive()))
                let ok = try #require(frames.first { $0.hasPrefix(#"{"op":"ok""#) })
                #expect(
                    ok
                        == #"{"op":"ok","id":\#(10 + index),"event_id":"b-\#(index)","duplicate":false,"offset":\#(index),"partition":4}"#
                )
                let event = try #require(frames.first { $0.hasPrefix(#"{"op":"event""#) })
                #expect(event.contains(#""offset":\#(index),"partition":4"#))
                // Durable before the `ok`: the log reads it back.
                let stored = try log.read(partition: 4, from: Int64(index), maximumRecords: 1)
                #expect(
                    stored.first.map { String(decoding: $0.bytes, as: UTF8.self) }?.contains(
                        #""event_id":"b-\#(index)""#) == true)
            }
        }
        try await broker.stop()
    }

    /// A write the disk refuses (`/dev/full` where the partition's next segment goes, so the roll to it
    /// fails): that publish and every later stored one are answered `storage_failed`, the connection stays,
    /// and events that are not stored still flow (docs/storage.md, "Failures while running").
    @Test func aPublishTheLogCannotStoreIsAnsweredStorageFailedAndSoIsEveryLaterOne() async throws {
        let broker = try await TestBroker.start(durable: true, segmentBytes: 4096) {
            $0.log.partitions = 1
            $0.log.persist = ["block.#"]
        }
        // Wherever the first roll falls, its segment is the full disk.
        let partition = broker.broker.configuration.dataDirectory + "/log/partition-000/"
        for base in 1...64 {
            try FileManager.default.createSymbolicLink(
                atPath: partition + String(format: "%020d", base) + ".log", withDestinationPath: "/dev/full")
        }
        try await broker.withModule("producer") { (client: inout Conversation) async throws in
            let payload = String(repeating: "p", count: 200)
            var stored = 0
            var refused: String?
            for index in 0..<64 where refused == nil {
                let reply = try #require(
                    try await client.request(
                        #"{"op":"publish","id":\#(index),"event":{"event_type":"block.new","event_id":"s-\#(index)","payload":"\#(payload)"}}"#
                    ))
                if reply.hasPrefix(#"{"op":"ok""#) { stored += 1 } else { refused = reply }
            }
            // The first segment took some, then its roll failed.
            #expect(stored > 0 && stored < 64)
            #expect(
                refused?.hasPrefix(#"{"op":"error","id":\#(stored),"code":"storage_failed""#) == true,
                "\(refused ?? "")")
            // Every later stored publish is refused at once; the connection stays and the rest works.
            let again = try await client.request(
                #"{"op":"publish","id":100,"event":{"event_type":"block.new","event_id":"again"}}"#)
            #expect(again?.hasPrefix(#"{"op":"error","id":100,"code":"storage_failed""#) == true)
            #expect(
                try await client.request(#"{"op":"publish","id":101,"event":{"event_type":"tx.new","event_id":"t"}}"#)
                    == #"{"op":"ok","id":101,"event_id":"t","duplicate":false}"#)
            #expect(try await client.request(#"{"op":"ping","id":102}"#) == #"{"op":"pong","id":102}"#)
        }
        try await broker.stop()
    }

    @Test func repliesComeInRequestOrderAndByeSendsWhatIsOwedFirst() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.persist = ["block.#"] }
        try await broker.withModule("pipeliner") { (client: inout Conversation) async throws in
            // Sent without waiting: a confirmed publish of a stored event (answered once durable), a ping, a
            // refused publish, an unstored publish and `stats` (all answerable at once), then `bye`.
            for frame in [
                #"{"op":"publish","id":1,"event":{"event_type":"block.new","event_id":"p1"}}"#,
                #"{"op":"ping","id":2}"#,
                #"{"op":"publish","id":3,"event":{"event_type":"X"}}"#,
                #"{"op":"publish","id":4,"event":{"event_type":"tx","event_id":"p4"}}"#,
                #"{"op":"stats","id":5,"module":"pipeliner"}"#,
                #"{"op":"publish","id":6,"event":{"event_type":"block.new","event_id":"p6"}}"#,
                #"{"op":"bye","id":7}"#,
            ] {
                try await client.send(frame)
            }
            var replies: [String] = []
            while let reply = try await client.receive() {
                if reply != #"{"op":"ping"}"# { replies.append(reply) }
            }
            #expect(
                replies.map { $0.split(separator: ",").prefix(2).joined(separator: ",") } == [
                    #"{"op":"ok","id":1"#, #"{"op":"pong","id":2}"#, #"{"op":"error","id":3"#,
                    #"{"op":"ok","id":4"#, #"{"op":"ok","id":5"#, #"{"op":"ok","id":6"#, #"{"op":"ok","id":7}"#,
                ])
            #expect(replies.first?.contains(#""event_id":"p1","duplicate":false,"offset":0"#) == true)
            #expect(replies.dropLast().last?.contains(#""event_id":"p6","duplicate":false,"offset":"#) == true)
        }
        try await broker.stop()
    }

    @Test func aPublisherFasterThanTheDiskIsHeldBackNotQueuedWithoutBound() async throws {
        // fsync `always`: a sync per record, far slower than a publisher that does not wait for confirms.
        let broker = try await TestBroker.start(durable: true) { $0.log.fsync = .always }
        let log = try #require(broker.broker.log)
        let payload = String(repeating: "x", count: 2_000)
        let count = 8_000
        let largest = Mutex(0)
        let watching = Task {
            while !Task.isCancelled {
                let backlog = log.backlog
                largest.withLock { $0 = max($0, backlog) }
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
        try await broker.withModule("firehose") { (client: inout Conversation) async throws in
            var frames: [UInt8] = []
            for index in 0..<count {
                frames += lengthPrefixed(
                    Array(
                        #"{"op":"publish","event":{"event_type":"tx","event_id":"f\#(index)","payload":"\#(payload)"}}"#
                            .utf8))
            }
            try await client.sendRaw(frames)
            // Replies in order: the pong comes once every publish before it was read and accepted.
            #expect(try await client.request(#"{"op":"ping","id":1}"#) == #"{"op":"pong","id":1}"#)
        }
        try await log.flush()
        watching.cancel()
        // About 16 MB went through a backlog that stayed near its limit (one read of 256 KiB may pass it), and
        // every event is stored.
        #expect(largest.withLock { $0 } <= DurableLog.backlogLimit + (1 << 20))
        let stored = (0..<log.configuration.partitions).reduce(Int64(0)) { $0 + log.bounds(partition: $1).end }
        #expect(stored >= Int64(count))
        try await broker.stop()
    }

    @Test func aDefaultTimestampIsTheLogsTimeForTheEventAndFollowsTheOffsets() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.persist = ["tx.#"] }
        let log = try #require(broker.broker.log)
        // Two publishers at once (each connection on its own event loop), on the same keys, none setting a
        // timestamp: over millisecond boundaries a second clock reading would differ from the first.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for publisher in ["p1", "p2"] {
                tasks.addTask {
                    try await broker.withModule(publisher) { (client: inout Conversation) async throws in
                        for index in 0..<1500 {
                            try await client.send(
                                #"{"op":"publish","event":{"event_type":"tx.new","chain_id":\#(index % 2),"payload":{}}}"#
                            )
                        }
                        _ = try await client.request(#"{"op":"ping","id":1}"#)
                    }
                }
            }
            try await tasks.waitForAll()
        }
        try await waitUntil { (0..<log.partitionCount).reduce(0) { $0 + Int(log.bounds(partition: $1).end) } == 3000 }
        for partition in 0..<log.partitionCount {
            var previous = Int64.min
            var next: Int64 = 0
            while true {
                let records = try log.read(partition: partition, from: next)
                guard let last = records.last else { break }
                for record in records {
                    let envelope = try #require(
                        try JSONSerialization.jsonObject(with: Data(record.bytes)) as? [String: Any])
                    let timestamp = try #require(envelope["timestamp"] as? String)
                    #expect(Timestamp.millisecondsSinceEpoch(timestamp) == record.timestamp)
                    #expect(record.timestamp >= previous)
                    previous = record.timestamp
                }
                next = last.offset + 1
            }
        }
        try await broker.stop()
    }

    @Test func eventsOutsidePersistAreDeliveredButNotStored() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.persist = ["block.#"] }
        let log = try #require(broker.broker.log)
        try await broker.withModule("producer") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(
                    #"{"op":"publish","id":1,"event":{"event_type":"mempool.tx","event_id":"m-1","payload":{}}}"#)
                    == #"{"op":"ok","id":1,"event_id":"m-1","duplicate":false}"#)
            let reply = try #require(
                try await client.request(
                    #"{"op":"publish","id":2,"event":{"event_type":"block.new","chain_id":7,"event_id":"b-1","payload":{}}}"#
                ))
            #expect(reply.hasSuffix(#""duplicate":false,"offset":0,"partition":\#(log.partition(forKey: "7"))}"#))
        }
        var stored: [String] = []
        for partition in 0..<log.partitionCount {
            stored += try log.read(partition: partition, from: 0).map { String(decoding: $0.bytes, as: UTF8.self) }
        }
        // The broker's own `module.loaded`/`module.unloaded` do not match `block.#` either.
        #expect(stored.count == 1)
        #expect(stored.first?.contains(#""event_id":"b-1""#) == true)
        try await broker.stop()
    }

    @Test func aStoredEnvelopeOverTheLimitIsRefusedAndTakesNoOffset() async throws {
        let broker = try await TestBroker.start(durable: true) {
            $0.ipc.maxFrame = 4096
            $0.log.persist = ["block.#"]
        }
        let partition = broker.broker.log!.partition(forKey: "3")
        let large = String(repeating: "x", count: 3100)
        try await broker.withModule("producer") { (client: inout Conversation) async throws in
            let refused = try #require(
                try await client.request(
                    #"{"op":"publish","id":1,"event":{"event_type":"block.new","chain_id":3,"event_id":"big","payload":{"x":"\#(large)"}}}"#
                ))
            #expect(refused.hasPrefix(#"{"op":"error","id":1,"code":"invalid_event""#))
            #expect(
                try await client.request(
                    #"{"op":"publish","id":2,"event":{"event_type":"block.new","chain_id":3,"event_id":"small","payload":{}}}"#
                )
                    == #"{"op":"ok","id":2,"event_id":"small","duplicate":false,"offset":0,"partition":\#(partition)}"#)
        }
        try await broker.stop()
    }

    @Test func storedEventsSurviveARestartAndOffsetsContinue() async throws {
        let directory = NSTemporaryDirectory() + "herald-durable-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for round in 0..<2 {
            let broker = try await TestBroker.start(durable: true) {
                $0.dataDirectory = directory
                $0.log.persist = ["tx.#"]
            }
            try await broker.withModule("producer") { (client: inout Conversation) async throws in
                let reply = try #require(
                    try await client.request(
                        #"{"op":"publish","id":1,"event":{"event_type":"tx","key":"k","event_id":"t-\#(round)","payload":{}}}"#
                    ))
                #expect(reply.contains(#""offset":\#(round),"#))
            }
            try await broker.broker.log!.flush()
            let partition = broker.broker.log!.partition(forKey: "k")
            #expect(try broker.broker.log!.read(partition: partition, from: 0).count == round + 1)
            broker.beginStopping()
            try await broker.stoppedKeepingDirectory()
        }
    }
}
