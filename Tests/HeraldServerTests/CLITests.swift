import Foundation
import HeraldCore
import Testing

@testable import HeraldServer

/// `herald publish`, `herald tail` and `herald stats` (PROTOCOL.md §8) against a real broker.
@Suite(.timeLimit(.minutes(3)))
struct CLITests {
    @Test(arguments: [
        (["tail", "x", "--count", "0"], "herald: --count must be at least 1\n"),
        (["serve", "--bogus"], "herald: Unknown option '--bogus'\n"),
        (["publish"], "herald: Missing expected argument '<event-type>'\n"),
        (["stats", "--timeout", "nan"], "herald: --timeout must be a number of seconds above 0 and at most 86400\n"),
        (["groups", "--timeout", "1e20"], "herald: --timeout must be a number of seconds above 0 and at most 86400\n"),
        (["tail", "x", "--from", "earliest"], "herald: --from needs --group\n"),
        (
            ["tail", "x", "--group", "g", "--from", "soon"],
            "herald: --from must be latest, earliest, an offset or an RFC 3339 time, not 'soon'\n"
        ),
        (["groups", "--http", "nonsense"], "herald: --http must be host:port, not 'nonsense'\n"),
        (["replay", "#", "--limit", "0"], "herald: --limit must be at least 1\n"),
        (
            ["modules", "load", "BAD NAME"],
            "herald: NAME must be a module name, 1 to 64 of a-z, 0-9, '_' and '-', not 'BAD NAME'\n"
        ),
        (["dlq", "x?y"], "herald: GROUP must be a group name, 1 to 64 of a-z, 0-9, '_' and '-', not 'x?y'\n"),
        (["dlq", "workers", "--limit", "0"], "herald: --limit must be 1 to 1000, not 0\n"),
        // Bench numbers that trapped (a negative range, an overflowing product).
        (["bench", "pubsub", "--stalled=-1"], "herald: --stalled must be from 0 to 10000\n"),
        (["bench", "ws", "--seconds=-1"], "herald: --seconds must be from 1 to 86400\n"),
        (
            ["bench", "http", "--events", "9223372036854775807"],
            "herald: --events must be from 1 to 1000000000 and --in-flight at least 1\n"
        ),
        (["dlq", "workers", "--limit", "1001"], "herald: --limit must be 1 to 1000, not 1001\n"),
        (
            ["tail", "x", "--group", "BAD!"],
            "herald: --group must be a group name, 1 to 64 of a-z, 0-9, '_' and '-', not 'BAD!'\n"
        ),
        (
            ["bridge", "setup", "--group", "g", "--exchange", "amq.topic"],
            "herald: --exchange: names starting with 'amq.' are reserved by RabbitMQ\n"
        ),
        (
            ["bridge", "setup", "--group", "g", "--url", "amqp://u:secret@h:99999"],
            "herald: --url: the port must be a number from 1 to 65535\n"
        ),
    ])
    func aCommandLineThatDoesNotParseFailsWithOneLine(arguments: [String], expected: String) async throws {
        let (status, output, errors) = await (try HeraldRun.start(arguments)).finishWithOutput()
        #expect(status == 64)
        #expect(output.isEmpty)
        #expect(errors == expected)
    }

    @Test func aBrokerThatDoesNotAnswerIsAOneLineFailureAfterTheTimeout() async throws {
        let directory = NSTemporaryDirectory() + "herald-silent-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socketListener = try SilentListener(unixPath: directory + "/h.sock")
        let httpListener = try SilentListener()
        for arguments in [
            ["stats", "--socket", socketListener.path!, "--timeout", "0.5"],
            ["publish", "x.y", "--socket", socketListener.path!, "--timeout", "0.5"],
            ["groups", "--http", "127.0.0.1:\(httpListener.port!)", "--timeout", "0.5"],
        ] {
            let (status, output, errors) = await (try HeraldRun.start(arguments)).finishWithOutput()
            #expect(status == 2, "\(arguments)")
            #expect(output.isEmpty)
            #expect(errors == "herald: the broker did not answer within 0.5 s (--timeout)\n", "\(arguments)")
        }
    }

    /// A benchmark with no broker to reach fails like the other commands: one line, status 2.
    @Test func aBenchmarkWithNoBrokerIsAOneLineFailure() async throws {
        let path = NSTemporaryDirectory() + "herald-nobody-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let (status, output, errors) = await (try HeraldRun.start(["bench", "pubsub", "--socket", path]))
            .finishWithOutput()
        #expect(status == 2)
        #expect(output.isEmpty)
        #expect(errors == "herald: bench: \(path): cannot connect (errno 2)\n")
    }

    @Test func publishPrintsTheEventIDAndTheEventArrivesAsGiven() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("watcher") { (watcher: inout Conversation) async throws in
            _ = try await watcher.request(#"{"op":"subscribe","id":1,"topics":["fee.#"]}"#)
            let run = try HeraldRun.start([
                "publish", "fee.estimate", "--chain-id", "138", "--payload", #"{"gwei": 12}"#, "--id", "f-1",
                "--socket", broker.socketPath,
            ])
            let (status, output, errors) = await run.finishWithOutput()
            #expect(status == 0)
            #expect(output == "f-1\n")
            #expect(errors.isEmpty)
            let event = try #require(try await watcher.receive())
            #expect(event.contains(#""event_type":"fee.estimate","event_id":"f-1""#))
            #expect(
                event.contains(
                    #""chain_id":138,"key":"138","payload":{"gwei": 12},"metadata":{"producer":"herald-cli"}"#))
        }
        let json = try HeraldRun.start(["publish", "x", "--id", "x-1", "--json", "--socket", broker.socketPath])
        #expect(await json.finishWithOutput().output == #"{"event_id":"x-1","duplicate":false}"# + "\n")
        try await broker.stop()
    }

    @Test func tailPrintsOneEnvelopePerLine() async throws {
        // Open connections get 200 ms to leave when the broker stops (the last tail below stays).
        let broker = try await TestBroker.start { $0.modules.shutdownTimeoutMs = 200 }
        let tail = try HeraldRun.start(["tail", "block.#", "--count", "2", "--socket", broker.socketPath])
        try await waitUntil { broker.broker.bus.subscribers(for: "block.new") == ["herald-cli"] }
        try await broker.withModule("node") { (node: inout Conversation) async throws in
            for number in 1...2 {
                try await node.send(
                    #"{"op":"publish","event":{"event_type":"block.new","event_id":"b-\#(number)","timestamp":"2026-11-23T08:00:00.000Z"}}"#
                )
            }
            #expect(try await node.request(#"{"op":"ping","id":1}"#) == #"{"op":"pong","id":1}"#)
        }
        let (status, output, _) = await tail.finishWithOutput()
        #expect(status == 0)
        #expect(
            output == """
                {"event_type":"block.new","event_id":"b-1","timestamp":"2026-11-23T08:00:00.000Z","key":"block.new","metadata":{"producer":"node"}}
                {"event_type":"block.new","event_id":"b-2","timestamp":"2026-11-23T08:00:00.000Z","key":"block.new","metadata":{"producer":"node"}}

                """)
        // A broker that goes away before the count is reached: one line on standard error, status 2. (The
        // first tail's subscription gone first: its name would satisfy the wait for the second's.)
        try await waitUntil { broker.broker.bus.subscriptionCount == 0 }
        let waiting = try HeraldRun.start(["tail", "block.#", "--count", "5", "--socket", broker.socketPath])
        try await waitUntil { broker.broker.bus.subscriptionCount == 1 }
        try await broker.stop()
        let (lost, _, errors) = await waiting.finishWithOutput()
        #expect(lost == 2)
        #expect(errors == "herald: the broker closed the connection after 0 events\n")
    }

    /// Ctrl-C ends a tail with status 0 and its drop report, not the events still buffered: before, the
    /// signal's default action ended it with neither.
    @Test func anInterruptedTailSaysWhatItDropped() async throws {
        let broker = try await TestBroker.start()
        let tail = try HeraldRun.start(["tail", "load.#", "--buffer", "1", "--socket", broker.socketPath])
        try await waitUntil { broker.broker.bus.subscribers(for: "load.test") == ["herald-cli"] }
        // Its standard output is not read yet: the tail blocks writing, and the client's queue of 10 000
        // events overflows.
        let events = 12_000
        let payload = String(repeating: "x", count: 200)
        try await broker.withModule("node") { (node: inout Conversation) async throws in
            for number in 1...events {
                try await node.send(
                    #"{"op":"publish","event":{"event_type":"load.test","event_id":"l-\#(number)","payload":"\#(payload)"}}"#
                )
            }
            #expect(try await node.request(#"{"op":"ping","id":1}"#) == #"{"op":"pong","id":1}"#)
        }
        kill(tail.process.processIdentifier, SIGINT)
        let (status, output, errors) = await tail.finishWithOutput()
        #expect(status == 0)
        let printed = output.split(separator: "\n").count
        #expect(printed < events)
        let report = try #require(
            errors.firstMatch(of: /^herald: (\d+) events printed; dropped (\d+) by the broker, (\d+) by this tool\n$/))
        #expect(Int(report.1) == printed)
        #expect(Int(report.2)! + Int(report.3)! > 0)
        try await broker.stop()
    }

    /// A tail interrupted while its broker does not answer: one signal ends it with status 0 once its close
    /// gives up waiting for the answer to its `bye` (it waited for ever); a second one, sent once the first
    /// was acted on, ends it at once with 130 (it went nowhere). The broker is a stand-in that answers the
    /// handshake and the subscribe, delivers one event, and then answers nothing.
    @Test(arguments: [1, 2])
    func aTailWhoseBrokerIsHungStillEnds(signals: Int) async throws {
        let directory = NSTemporaryDirectory() + "herald-hung-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/h.sock"
        let broker = try HeraldRun.start(["python3", "-c", Self.hungBroker, socket], program: "/usr/bin/env")
        defer { kill(broker.process.processIdentifier, SIGKILL) }
        #expect(await broker.nextLine() == "listening")
        let tail = try HeraldRun.start(["tail", "test.#", "--socket", socket])
        // Printed once subscribed, and so trapping the signals.
        #expect(await tail.nextLine()?.contains(#""event_id":"e-1""#) == true)
        kill(tail.process.processIdentifier, SIGINT)
        #expect(await broker.nextLine() == "bye")
        if signals == 2 { kill(tail.process.processIdentifier, SIGINT) }
        let (status, _) = await tail.finish()
        #expect(status == (signals == 1 ? 0 : 130))
    }

    /// A broker that answers `hello` and `subscribe`, delivers one event, and then answers nothing; it says
    /// `listening` and `bye` (when one comes) on its standard output.
    static let hungBroker = #"""
        import json, socket, struct, sys
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(sys.argv[1])
        server.listen(1)
        print("listening", flush=True)
        connection, _ = server.accept()
        buffer = b""
        def send(message):
            body = json.dumps(message).encode()
            connection.sendall(struct.pack(">I", len(body)) + body)
        while True:
            while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">I", buffer[:4])[0]:
                chunk = connection.recv(65536)
                if not chunk:
                    sys.exit(0)
                buffer += chunk
            length = struct.unpack(">I", buffer[:4])[0]
            frame, buffer = json.loads(buffer[4:4 + length]), buffer[4 + length:]
            if frame["op"] == "hello":
                send({"op": "welcome", "id": frame["id"], "protocol": 1, "session": "s-1",
                      "server": {"name": "herald", "version": "0"}, "max_frame": 1048576,
                      "heartbeat_ms": 3600000})
            elif frame["op"] == "subscribe":
                send({"op": "ok", "id": frame["id"], "subscription": 1})
                send({"op": "event", "subscription": 1, "seq": 1,
                      "event": {"event_type": "test.marker", "event_id": "e-1",
                                "timestamp": "2026-11-25T00:00:00.000Z", "key": "test.marker"}})
            elif frame["op"] == "bye":
                print("bye", flush=True)
        """#

    /// A reader that goes away (`herald tail '#' | head -n1`) ends `tail` quietly with status 0: SwiftNIO
    /// turns the pipe's signal off, and the write's error stopped the process with a crash report.
    @Test func tailWhoseReaderIsGoneEndsQuietly() async throws {
        let broker = try await TestBroker.start()
        let tail = try HeraldRun.start(["tail", "block.#", "--socket", broker.socketPath])
        try await waitUntil { broker.broker.bus.subscribers(for: "block.new") == ["herald-cli"] }
        tail.output.fileHandleForReading.closeFile()
        try await broker.withModule("node") { (node: inout Conversation) async throws in
            #expect(
                try await node.request(#"{"op":"publish","id":1,"event":{"event_type":"block.new"}}"#)?.hasPrefix(
                    #"{"op":"ok","id":1"#) == true)
        }
        let (status, errors) = await tail.finish()
        #expect(status == 0)
        #expect(errors.isEmpty, "\(errors)")
        try await broker.stop()
    }

    @Test func tailWithAGroupPrintsStoredEventsAndAcknowledgesThem() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.persist = ["block.#"] }
        try await broker.withModule("node") { (node: inout Conversation) async throws in
            for number in 1...3 {
                let reply = try await node.request(
                    #"{"op":"publish","id":\#(number),"event":{"event_type":"block.new","chain_id":1,"event_id":"b-\#(number)"}}"#
                )
                #expect(reply?.contains(#""offset":\#(number - 1)"#) == true)
            }
        }
        let arguments = ["tail", "block.#", "--group", "cli", "--socket", broker.socketPath]
        let first = try HeraldRun.start(arguments + ["--from", "earliest", "--count", "2"])
        let (status, output, _) = await first.finishWithOutput()
        #expect(status == 0)
        #expect(output.split(separator: "\n").map { $0.contains(#""event_id":"b-1""#) } == [true, false])
        #expect(output.split(separator: "\n").last?.contains(#""event_id":"b-2""#) == true)
        // The group resumes after what the first run acknowledged.
        let second = try HeraldRun.start(arguments + ["--count", "1"])
        let resumed = await second.finishWithOutput()
        #expect(resumed.status == 0)
        #expect(resumed.output.contains(#""event_id":"b-3""#))
        try await broker.stop()
    }

    @Test func statsPrintsEveryModuleOrOne() async throws {
        let broker = try await TestBroker.start()
        try await broker.withModule("reader") { (reader: inout Conversation) async throws in
            _ = try await reader.request(#"{"op":"subscribe","id":1,"topics":["x"]}"#)
            _ = try await reader.request(#"{"op":"publish","id":2,"event":{"event_type":"x"}}"#)
            _ = try await reader.receive()
            try await waitUntil { broker.broker.bus.deliveryStatistics(for: "reader")?.successful == 1 }
        }
        let json = try HeraldRun.start(["stats", "reader", "--json", "--socket", broker.socketPath])
        #expect(
            await json.finishWithOutput().output == #"{"reader":{"successful":1,"failed":0,"channel_full":0}}"# + "\n")
        let table = try HeraldRun.start(["stats", "--socket", broker.socketPath])
        let lines = await table.finishWithOutput().output.split(separator: "\n")
        // Every module that ever connected, the CLI's own connections (`herald-cli`) among them (§5).
        #expect(
            lines == [
                "module      successful    failed        channel_full",
                "herald-cli  0             0             0",
                "reader      1             0             0",
            ])
        let unknown = try HeraldRun.start(["stats", "ghost", "--socket", broker.socketPath])
        let (status, _, errors) = await unknown.finishWithOutput()
        #expect(status != 0)
        #expect(errors == "herald: invalid_request: module: 'ghost' was never seen\n")
        try await broker.stop()
    }

    @Test(arguments: [
        (["publish", "Block.New"], "herald: invalid_event: event_type: "),
        (["publish", "x", "--payload", "{oops"], "herald: invalid_event: payload: "),
        (["tail", "#", "--from", "earliest"], "herald: --from needs --group"),
        (["tail", "#", "--group", "g", "--from", "yesterday"], "herald: --from must be latest, earliest, an offset"),
        (["stats"], "herald: cannot connect to the broker: /nonexistent/herald.sock: "),
    ])
    func failuresAreOneLineAndNonZero(_ arguments: [String], _ prefix: String) async throws {
        let run = try HeraldRun.start(arguments + ["--socket", "/nonexistent/herald.sock"])
        let (status, output, errors) = await run.finishWithOutput()
        #expect(status != 0)
        #expect(output.isEmpty)
        #expect(errors.hasPrefix(prefix))
        #expect(errors.filter { $0 == "\n" }.count == 1)
    }

    @Test func benchPubSubDeliversEveryEventToEverySubscriber() async throws {
        // Run from a directory whose herald.toml the spawned broker must not read (it would refuse to start).
        let directory = NSTemporaryDirectory() + "herald-bench-cwd-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "bogus = 1\n".write(toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let run = try HeraldRun.start(
            ["bench", "pubsub", "--spawn", "--events", "3000", "--subscribers", "2", "--stalled", "1", "--json"],
            in: directory)
        let (status, output, _) = await run.finishWithOutput()
        #expect(status == 0)
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(result["mode"] as? String == "throughput")
        #expect(result["events"] as? Int == 3000)
        #expect(result["delivered"] as? Int == 6000)
        #expect(result["dropped"] as? Int == 0)
        #expect((result["events_per_second"] as? Int ?? 0) > 0)
    }

    /// Publishes the broker refuses (here its rate limit) end the benchmark with the count, instead of its
    /// subscribers waiting for ever for events that will not come.
    @Test func benchPubSubStopsWhenTheBrokerRefusesPublishes() async throws {
        let broker = try await TestBroker.start { $0.ipc.publishRate = 100 }
        let run = try HeraldRun.start(["bench", "pubsub", "--socket", broker.socketPath, "--events", "2000"])
        let (status, output, errors) = await run.finishWithOutput()
        #expect(status == 2)
        #expect(output.isEmpty)
        #expect(errors.hasPrefix("herald: bench: the broker refused "))
        #expect(errors.hasSuffix(" of the published events\n"))
        try await broker.stop()
    }

    /// A publisher whose connection the broker closes (a frame over `max_frame`) ends the benchmark with
    /// one line; its subscribers waited for ever for what it did not publish.
    @Test func benchPubSubStopsWhenThePublishersConnectionEnds() async throws {
        let broker = try await TestBroker.start { $0.ipc.maxFrame = 4096 }
        let run = try HeraldRun.start([
            "bench", "pubsub", "--socket", broker.socketPath, "--events", "100", "--payload-size", "8192",
        ])
        let (status, output, errors) = await run.finishWithOutput()
        #expect(status == 2)
        #expect(output.isEmpty)
        #expect(errors.hasPrefix("herald: bench: "))
        try await broker.stop()
    }

    @Test func benchPubSubMeasuresLatencyAtARate() async throws {
        let run = try HeraldRun.start([
            "bench", "pubsub", "--spawn", "--events", "500", "--latency", "--rate", "5000", "--json",
        ])
        let (status, output, _) = await run.finishWithOutput()
        #expect(status == 0)
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let latency = try #require(result["latency_us"] as? [String: Double])
        #expect(result["rate"] as? Int == 5000)
        #expect(result["delivered"] as? Int == 500)
        #expect(latency["p50"]! > 0)
        #expect(latency["p50"]! <= latency["p99"]!)
        #expect(latency["p99"]! <= latency["p999"]!)
        // 500 events at 5000 per second take at least 0.1 s: the rate is kept.
        #expect((result["seconds"] as? Double ?? 0) >= 0.099)
    }

    @Test func benchGroupCommitTimesAcksAtEachPendingCount() async throws {
        let run = try HeraldRun.start([
            "bench", "group-commit", "--pending", "20,300", "--acks", "5", "--nacks", "3", "--json",
        ])
        let (status, output, _) = await run.finishWithOutput()
        #expect(status == 0)
        let results = try output.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        #expect(results.map { $0["pending"] as? Int } == [20, 300])
        for result in results {
            #expect(result["acks"] as? Int == 5)
            let p50 = try #require(result["p50_us"] as? Int)
            let p99 = try #require(result["p99_us"] as? Int)
            let max = try #require(result["max_us"] as? Int)
            #expect(p50 > 0 && p50 <= p99 && p99 <= max)
            #expect(result["nacks"] as? Int == 3)
            #expect(result["nack_span_ms"] as? Int == 303)
            #expect((result["nack_cpu_ms"] as? Int).map { $0 >= 0 } == true)
        }
        let refused = try HeraldRun.start(["bench", "group-commit", "--pending", "10,x"])
        let (refusedStatus, refusedErrors) = await refused.finish()
        #expect(refusedStatus != 0)
        #expect(refusedErrors.contains("--pending must be positive counts, comma-separated"))
    }

    @Test func benchParseTimesParsingAndSealingInProcess() async throws {
        let run = try HeraldRun.start(["bench", "parse", "--events", "300", "--rounds", "2", "--json"])
        let (status, output, _) = await run.finishWithOutput()
        #expect(status == 0)
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(result["events"] as? Int == 300)
        #expect((result["parse_ns"] as? Double ?? 0) > 0)
        #expect((result["seal_ns"] as? Double ?? 0) > 0)
        // The sealed envelope: the 256-byte payload, the fields sent, `producer`, `key`, `offset`, `partition`.
        // The benchmark's ids carry a random tag of up to 8 hexadecimal digits.
        let payload = #"{"t":"00000000000000000000","p":""# + String(repeating: "x", count: 221) + #""}"#
        let expected = try EventEnvelope(
            eventType: "bench", eventID: "e-00000000-000000000100", timestamp: "2026-11-23T00:00:00.000Z",
            key: "bench", payload: RawJSON(validating: payload), metadata: ["producer": "bench"]
        ).stored(offset: 100, partition: 0)
        let size = try #require(result["envelope_bytes"] as? Int)
        #expect((expected.json.count - 9)...(expected.json.count + 1) ~= size)
    }

    @Test(arguments: [[], ["--close"]])
    func benchHTTPPublishesSingleEventsAndBatches(_ extra: [String]) async throws {
        let run = try HeraldRun.start(
            ["bench", "http", "--spawn", "--events", "60", "--batch", "20", "--in-flight", "4"] + extra)
        let (status, output, _) = await run.finishWithOutput()
        #expect(status == 0)
        // Every request was answered 200 (the bench fails on any other status).
        let lines = output.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.hasPrefix("single: 60 events in 60 requests, ") == true)
        #expect(lines.last?.hasPrefix("batched: 60 events in 3 requests, ") == true)
    }

    @Test func benchWebSocketReceivesEveryMatchingEventOnEveryConnection() async throws {
        let run = try HeraldRun.start([
            "bench", "ws", "--spawn", "--connections", "20", "--rate", "200", "--matching", "0.5", "--seconds", "1",
            "--json",
        ])
        let (status, output, _) = await run.finishWithOutput()
        #expect(status == 0)
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(result["published"] as? Int == 200)
        // Half of the 200 events are block.new.*, each received by all 20 clients (their delays recorded).
        #expect(result["expected_deliveries"] as? Int == 2000)
        #expect(result["received"] as? Int == 2000)
        let p50 = try #require(result["p50_us"] as? Double)
        #expect(p50 > 0)
        #expect(p50 <= (result["p99_us"] as? Double ?? 0))
        #expect((result["idle_kib_per_connection"] as? Double) != nil)
    }
}
