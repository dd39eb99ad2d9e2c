import Foundation
import HeraldClient
import HeraldCore
import Testing

@testable import HeraldServer

/// PROTOCOL.md §7 and §9 over a real HTTP connection: every row of the table, with its statuses and
/// bodies, and the tokens.
@Suite(.timeLimit(.minutes(3)))
struct HTTPAPITests {
    /// A broker with its log (storing `tx.#` only, in 2 partitions, so the broker's own events take no
    /// offsets) and its HTTP gateway.
    static func start(_ configure: @escaping (inout HeraldConfiguration) -> Void = { _ in }) async throws
        -> TestBroker
    {
        try await TestBroker.start(durable: true, http: true) {
            $0.log.persist = ["tx.#"]
            $0.log.partitions = 2
            configure(&$0)
        }
    }

    static let tokens = [
        HeraldConfiguration.Token(
            name: "ui", secret: "ui-secret", publish: [try! TopicPattern("notification")],
            subscribe: [try! TopicPattern("tx.#")]),
        HeraldConfiguration.Token(
            name: "ops", secret: "ops-secret", publish: [try! TopicPattern("#")], subscribe: [try! TopicPattern("#")],
            admin: true),
    ]

    /// The `error` object of an error body.
    static func error(_ response: HeraldHTTPClient.Response) -> [String: Any]? {
        response.json?["error"] as? [String: Any]
    }

    /// `{"event_type":"tx","event_id":id,…}` as JSON text.
    static func event(_ id: String, type: String = "tx", key: String? = nil) -> String {
        #"{"event_type":"\#(type)","event_id":"\#(id)","key":"\#(key ?? id)","payload":{"n":1}}"#
    }

    // MARK: Health

    @Test func healthAndReadiness() async throws {
        // Storing every topic, the broker's own events included.
        let broker = try await TestBroker.start(durable: true, http: true)
        let health = try await broker.http().get("/healthz")
        #expect(health.status == 200)
        #expect(health.text == #"{"status":"ok"}"#)
        #expect(health.header("content-type") == "application/json")
        let ready = try await broker.http().get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.text == #"{"status":"ready"}"#)
        // Ready means node.startup_completed was published (and stored, so it can be replayed).
        let startup = try await broker.http().get("/v1/events?topic=node.startup_completed")
        let events = try #require(startup.json?["events"] as? [[String: Any]])
        #expect(events.count == 1)
        #expect((events.first?["payload"] as? [String: Any])?["components"] as? [String] == ["ipc", "http"])
        broker.broker.beginShutdown()
        let draining = try await broker.http().get("/readyz")
        #expect(draining.status == 503)
        #expect(Self.error(draining)?["code"] as? String == "not_ready")
        // The listener serves during the drain (docs/protocol.md, "Shutdown"): alive, refusing publishes.
        #expect(try await broker.http().get("/healthz").status == 200)
        let publish = try await broker.http().post("/v1/events", json: #"{"event_type":"test.late"}"#)
        #expect(publish.status == 503)
        #expect(Self.error(publish)?["code"] as? String == "shutting_down")
        try await broker.stop()
    }

    @Test func aMethodItsPathDoesNotTakeIs405NamingTheOnesItDoes() async throws {
        let broker = try await Self.start()
        let put = try await broker.http().request("PUT", "/v1/events")
        #expect(put.status == 405)
        #expect(put.header("allow") == "GET, HEAD, POST")
        #expect(Self.error(put)?["code"] as? String == "invalid_request")
        // A path with a parameter, and the health check.
        let stats = try await broker.http().request("POST", "/v1/stats/someone")
        #expect(stats.status == 405)
        #expect(stats.header("allow") == "DELETE, GET, HEAD")
        #expect(try await broker.http().request("POST", "/healthz").header("allow") == "GET, HEAD")
        // HEAD is answered as the GET, without its body.
        let head = try await broker.http().request("HEAD", "/healthz")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(try await broker.http().request("HEAD", "/v1/nothing").status == 404)
        // A path no route has is still 404.
        #expect(try await broker.http().request("PUT", "/v1/nothing").status == 404)
        try await broker.stop()
    }

    @Test func anUnknownPathIs404WithAnErrorBody() async throws {
        let broker = try await Self.start()
        let response = try await broker.http().get("/v1/nothing")
        #expect(response.status == 404)
        #expect(Self.error(response)?["code"] as? String == "not_found")
        #expect((Self.error(response)?["message"] as? String)?.contains("/v1/nothing") == true)
        // A long path is quoted in part: an error's message is at most 1 KiB, as on the IPC socket.
        let long = try await broker.http().get("/v1/" + String(repeating: "a", count: 20_000))
        #expect(long.status == 404)
        let message = Self.error(long)?["message"] as? String
        #expect(message?.hasPrefix("GET /v1/aaa") == true)
        #expect(message?.hasSuffix("…") == true)
        #expect((message?.utf8.count ?? .max) <= 1024)
        try await broker.stop()
    }

    // MARK: Publishing

    @Test func publishingOneEventRepliesWithWhereItIsStoredAndDeliversIt() async throws {
        let broker = try await Self.start()
        let subscription = try broker.broker.bus.subscribe(["tx.#"], subscriber: "watcher")
        let response = try await broker.http().post("/v1/events", json: Self.event("one"))
        #expect(response.status == 200, "\(response.text)")
        let results = try #require(response.json?["results"] as? [[String: Any]])
        #expect(results.count == 1)
        #expect(results[0]["event_id"] as? String == "one")
        #expect(results[0]["duplicate"] as? Bool == false)
        let partition = try #require(results[0]["partition"] as? Int)
        #expect(results[0]["offset"] as? Int == 0)
        // Durable before the reply: the log holds it.
        #expect(broker.broker.log?.bounds(partition: partition).end == 1)
        var events = subscription.makeAsyncIterator()
        let delivered = try #require(await events.next())
        #expect(delivered.eventID == "one")
        #expect(delivered.metadata["producer"] == "http:anonymous")
        try await broker.stop()
    }

    /// RFC 9110 §10.1.1: a client that sends `Expect: 100-continue` waits for `100 Continue` before its body
    /// (curl does, for bodies over 1 MiB, for up to a second).
    @Test func aRequestThatExpects100ContinueGetsItBeforeItsBody() async throws {
        let broker = try await Self.start()
        let body = Self.event("continued")
        let (beforeBody, answer) = try await rawExchange(
            address: broker.gateway!.address,
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
            thenOnceReceived: "\r\n\r\n", send: body)
        #expect(beforeBody == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(answer.dropFirst(beforeBody.count).hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answer.contains(#""event_id":"continued""#))
        try await broker.stop()
    }

    @Test func aBodyStartingWithAByteOrderMarkIsReadWithoutIt() async throws {
        let broker = try await Self.start()
        let response = try await broker.http().request(
            "POST", "/v1/events", body: [0xEF, 0xBB, 0xBF] + Array(Self.event("bom").utf8),
            headers: [("Content-Type", "application/json")])
        #expect(response.status == 200)
        #expect(response.text.contains(#""event_id":"bom""#))
        try await broker.stop()
    }

    @Test func aBatchIsPublishedInOrderWithDuplicatesMarked() async throws {
        let broker = try await Self.start()
        let body =
            #"{"events":["#
            + [Self.event("a", key: "k"), Self.event("b", key: "k"), Self.event("a", key: "k")]
            .joined(separator: ",") + "]}"
        let response = try await broker.http().post("/v1/events", json: body)
        #expect(response.status == 200, "\(response.text)")
        let results = try #require(response.json?["results"] as? [[String: Any]])
        #expect(results.map { $0["event_id"] as? String } == ["a", "b", "a"])
        #expect(results.map { $0["duplicate"] as? Bool } == [false, false, true])
        #expect(results.map { $0["offset"] as? Int } == [0, 1, 0])
        // An event not stored carries neither offset nor partition (§9).
        let live = try await broker.http().post("/v1/events", json: Self.event("n", type: "notification"))
        let result = try #require((live.json?["results"] as? [[String: Any]])?.first)
        #expect(result["offset"] == nil && result["partition"] == nil)
        try await broker.stop()
    }

    @Test func aBadEventFailsTheWholeBatchWithItsIndex() async throws {
        let broker = try await Self.start()
        let body = #"{"events":["# + Self.event("a") + "," + Self.event("b") + #",{"event_type":"Bad Type"}]}"#
        let response = try await broker.http().post("/v1/events", json: body)
        #expect(response.status == 400)
        let error = try #require(Self.error(response))
        #expect(error["code"] as? String == "invalid_event")
        #expect(error["index"] as? Int == 2)
        // Nothing of the batch was published.
        let stored = try await broker.http().get("/v1/events")
        #expect((stored.json?["events"] as? [Any])?.isEmpty == true)
        try await broker.stop()
    }

    /// A batch whose event the log refuses as it is accepted (its partition failed: `/dev/full` where the
    /// partition's next segment goes) stops there: 500 `storage_failed` with that `index`, and no later event
    /// of the batch is stored, even in a partition that works.
    @Test func aBatchStopsAtTheFirstEventTheLogRefuses() async throws {
        let broker = try await TestBroker.start(durable: true, segmentBytes: 4096, http: true) {
            $0.log.persist = ["tx.#"]
            $0.log.partitions = 2
        }
        let log = try #require(broker.broker.log)
        // Keys for each partition.
        let keys = (0..<50).map { "k\($0)" }
        let failing = try #require(keys.first { log.partition(forKey: $0) == 0 })
        let working = try #require(keys.first { log.partition(forKey: $0) == 1 })
        let partition = broker.broker.configuration.dataDirectory + "/log/partition-000/"
        for base in 1...64 {
            try FileManager.default.createSymbolicLink(
                atPath: partition + String(format: "%020d", base) + ".log", withDestinationPath: "/dev/full")
        }
        let padding = String(repeating: "p", count: 300)
        func event(_ id: String, key: String) -> String {
            #"{"event_type":"tx","event_id":"\#(id)","key":"\#(key)","payload":"\#(padding)"}"#
        }
        // Events of partition 0 until its segment rolls onto the full disk.
        var index = 0
        var refused: HeraldHTTPClient.Response?
        while refused == nil, index < 64 {
            let response = try await broker.http().post("/v1/events", json: event("f-\(index)", key: failing))
            if response.status != 200 { refused = response }
            index += 1
        }
        #expect(refused?.status == 500)
        // The partition refuses at once now: a batch of [working, failing, working] stops at index 1.
        let batch =
            #"{"events":["#
            + [event("w-0", key: working), event("f-x", key: failing), event("w-1", key: working)]
            .joined(separator: ",") + "]}"
        let response = try await broker.http().post("/v1/events", json: batch)
        #expect(response.status == 500)
        #expect(Self.error(response)?["code"] as? String == "storage_failed")
        #expect(Self.error(response)?["index"] as? Int == 1)
        let stored = try log.read(partition: 1, from: 0, maximumRecords: 100).map {
            try EventEnvelope(json: $0.bytes, form: .delivered).eventID
        }
        #expect(stored == ["w-0"])
        try await broker.stop()
    }

    @Test(arguments: [
        ("not json", "invalid_request"),
        ("[1,2]", "invalid_request"),
        (#"{"events":[]}"#, "invalid_request"),
        (#"{"events":[{"event_type":"tx"}],"more":1}"#, "invalid_request"),
        (#"{"payload":{}}"#, "invalid_event"),
        // A batch whose `events` is not an array is a malformed batch, not an envelope with an unknown field.
        (#"{"events":{}}"#, "invalid_request"),
        // `events` twice is refused, not resolved by the last.
        (#"{"events":[{"event_type":"tx"}],"events":[{"event_type":"tx"}]}"#, "invalid_request"),
    ])
    func aMalformedBodyIs400(_ body: String, _ code: String) async throws {
        let broker = try await Self.start()
        let response = try await broker.http().post("/v1/events", json: body)
        #expect(response.status == 400)
        #expect(Self.error(response)?["code"] as? String == code)
        try await broker.stop()
    }

    @Test func withoutTokensAPageOfAnotherSiteCannotPublishOrOpenAWebSocket() async throws {
        let open = try await Self.start()
        let address = open.gateway!.address
        let foreign = try await open.http().request(
            "POST", "/v1/events", body: Array(Self.event("csrf").utf8), headers: [("Origin", "http://evil.example")])
        #expect(foreign.status == 403)
        #expect(
            (Self.error(foreign)?["message"] as? String)?.hasPrefix("Origin: a page from http://evil.example") == true)
        let upgrade = [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Origin", "null"),
        ]
        #expect(try await open.http().request("GET", "/v1/ws?topics=x", headers: upgrade).status == 403)
        // A page that points its own name at this address (DNS rebinding) sends that name as Host, and gets
        // nothing, reads included; an IP address or localhost is this broker.
        for (method, path) in [("GET", "/v1/stats"), ("POST", "/v1/events")] {
            let rebound = try await open.http().request(
                method, path, body: method == "POST" ? Array(Self.event("csrf").utf8) : nil,
                headers: [
                    ("Host", "evil.example:\(address.split(separator: ":").last!)"), ("Origin", "http://evil.example"),
                ])
            #expect(rebound.status == 403, "\(method) \(path)")
            #expect((Self.error(rebound)?["message"] as? String)?.hasPrefix("Host: 'evil.example:") == true)
        }
        #expect(try await open.http().request("GET", "/v1/stats", headers: [("Host", "localhost")]).status == 200)
        // Nothing was published (the same event is new afterwards); the broker's own page, reads and clients
        // without an Origin are not affected.
        let again = try await open.http().post("/v1/events", json: Self.event("csrf"))
        #expect(again.status == 200 && again.text.contains(#""duplicate":false"#))
        let own = try await open.http().request(
            "POST", "/v1/events", body: Array(Self.event("own").utf8), headers: [("Origin", "http://\(address)")])
        #expect(own.status == 200)
        #expect(
            try await open.http().request("GET", "/v1/stats", headers: [("Origin", "http://evil.example")]).status
                == 200)
        #expect(try await open.http().post("/v1/events", json: Self.event("plain")).status == 200)
        try await open.stop()
        // With tokens, a page of another site must present one, and then may.
        let guarded = try await Self.start {
            $0.tokens = [
                HeraldConfiguration.Token(
                    name: "ui", secret: "ui-secret", publish: [try! TopicPattern("#")], subscribe: [])
            ]
        }
        let allowed = try await guarded.http(token: "ui-secret").request(
            "POST", "/v1/events", body: Array(Self.event("token").utf8), headers: [("Origin", "http://ui.example")])
        #expect(allowed.status == 200)
        try await guarded.stop()
    }

    @Test func bodiesAndBatchesOverTheirLimitsAre413() async throws {
        let broker = try await Self.start { $0.http.maxBody = 4096 }
        let big = try await broker.http().post("/v1/events", json: Self.event(String(repeating: "x", count: 5000)))
        #expect(big.status == 413)
        #expect(Self.error(big)?["code"] as? String == "too_large")
        // Without a Content-Length (chunked), the limit is found while the body is read: the same answer.
        let chunk = Self.event(String(repeating: "x", count: 5000))
        let chunked = try await rawExchange(
            address: broker.gateway!.address,
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                + "Connection: close\r\n\r\n" + String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n0\r\n\r\n")
        #expect(chunked.hasPrefix("HTTP/1.1 413"))
        #expect(chunked.contains(#""code":"too_large""#))
        try await broker.stop()
        let roomy = try await Self.start()
        let many = #"{"events":["# + (0...1000).map { Self.event("e\($0)") }.joined(separator: ",") + "]}"
        let batch = try await roomy.http().post("/v1/events", json: many)
        #expect(batch.status == 413)
        #expect((Self.error(batch)?["message"] as? String)?.contains("1001 events") == true)
        try await roomy.stop()
    }

    // MARK: Replay

    /// Publishes `count` `tx.<n>` events with ids `e0`, `e1`, … over HTTP, one request each.
    static func publish(_ count: Int, to broker: TestBroker) async throws {
        for index in 0..<count {
            let type = index % 2 == 0 ? "tx.even" : "tx.odd"
            let response = try await broker.http().post("/v1/events", json: Self.event("e\(index)", type: type))
            #expect(response.status == 200)
        }
    }

    @Test func replayPagesThroughEveryEventInTimestampOrderWithTheCursor() async throws {
        let broker = try await Self.start()
        try await Self.publish(9, to: broker)
        var seen: [[String: Any]] = []
        var from = "earliest"
        while true {
            let page = try await broker.http().get("/v1/events?from=\(from)&limit=4")
            #expect(page.status == 200, "\(page.text)")
            let events = try #require(page.json?["events"] as? [[String: Any]])
            from = try #require(page.json?["next"] as? String)
            if events.isEmpty { break }
            seen += events
        }
        // Every event once; within a partition in offset order (the merge order itself: ReplayTests).
        let ids = seen.compactMap { $0["event_id"] as? String }
        #expect(ids.count == 9 && Set(ids) == Set((0..<9).map { "e\($0)" }))
        for partition in 0..<2 {
            let offsets = seen.filter { $0["partition"] as? Int == partition }.compactMap { $0["offset"] as? Int }
            #expect(offsets == Array(0..<offsets.count))
        }
        // The last cursor, passed again, finds only what is published after it.
        _ = try await broker.http().post("/v1/events", json: Self.event("late"))
        let more = try await broker.http().get("/v1/events?from=\(from)")
        #expect((more.json?["events"] as? [[String: Any]])?.compactMap { $0["event_id"] as? String } == ["late"])
        try await broker.stop()
    }

    @Test func replayFiltersByPatternAndReadsOnePartitionFromAnOffset() async throws {
        let broker = try await Self.start()
        try await Self.publish(6, to: broker)
        let odd = try await broker.http().get("/v1/events?topic=tx.odd")
        #expect(
            (odd.json?["events"] as? [[String: Any]])?.compactMap { $0["event_id"] as? String } == ["e1", "e3", "e5"])
        let log = try #require(broker.broker.log)
        let partition = (0..<2).first { log.bounds(partition: $0).end >= 2 }!
        let page = try await broker.http().get("/v1/events?partition=\(partition)&from=1&limit=1")
        let events = try #require(page.json?["events"] as? [[String: Any]])
        #expect(events.map { $0["offset"] as? Int } == [1])
        #expect(events.map { $0["partition"] as? Int } == [partition])
        #expect(page.json?["next"] as? String == "2")
        let future = Timestamp.format(millisecondsSinceEpoch: Timestamp.currentMilliseconds() + 60_000)
        let none = try await broker.http().get("/v1/events?from=\(future)")
        #expect((none.json?["events"] as? [Any])?.isEmpty == true)
        try await broker.stop()
    }

    @Test(arguments: [
        ("/v1/events?topic=tx..x", 400, "invalid_topic"),
        ("/v1/events?from=yesterday", 400, "invalid_request"),
        ("/v1/events?from=3", 400, "invalid_request"),
        ("/v1/events?from=c.1.2.3", 400, "invalid_request"),
        ("/v1/events?limit=1001", 400, "invalid_request"),
        ("/v1/events?partition=9", 400, "invalid_request"),
        ("/v1/events?limit=1&limit=2", 400, "invalid_request"),
        ("/v1/subscribers?event_type=a&event_type=b", 400, "invalid_request"),
    ])
    func badReplayQueriesAre400(_ path: String, _ status: Int, _ code: String) async throws {
        let broker = try await Self.start()
        let response = try await broker.http().get(path)
        #expect(response.status == status)
        #expect(Self.error(response)?["code"] as? String == code)
        try await broker.stop()
    }

    // MARK: Statistics, subscribers, modules

    @Test func statisticsSubscribersAndModules() async throws {
        let broker = try await Self.start()
        try await broker.withModule("indexer") { (client: inout Conversation) async throws in
            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["tx.#"]}"#)
            _ = try await broker.http().post("/v1/events", json: Self.event("s1"))
            #expect(try await client.receive()?.contains(#""event_id":"s1""#) == true)
            try await waitUntil { broker.broker.bus.deliveryStatistics(for: "indexer")?.successful == 1 }
            let all = try await broker.http().get("/v1/stats")
            let stats = try #require(all.json?["stats"] as? [String: [String: Int]])
            #expect(stats["indexer"] == ["successful": 1, "failed": 0, "channel_full": 0])
            let one = try await broker.http().get("/v1/stats/indexer")
            #expect(one.text == #"{"stats":{"indexer":{"channel_full":0,"failed":0,"successful":1}}}"#)
            // A name in the path is percent-decoded (RFC 3986): `%64` is `d`, as encodeURIComponent may write.
            #expect(try await broker.http().get("/v1/stats/in%64exer").text == one.text)
            let broken = try await broker.http().get("/v1/stats/in%zzdexer")
            #expect(broken.status == 400)
            #expect(Self.error(broken)?["message"] as? String == "path: 'in%zzdexer' is not valid percent-encoding")
            #expect(try await broker.http().get("/v1/stats/ghost").status == 404)
            let reset = try await broker.http().delete("/v1/stats/indexer")
            #expect(reset.status == 200)
            #expect(broker.broker.bus.deliveryStatistics(for: "indexer")?.successful == 0)
            #expect(try await broker.http().delete("/v1/stats/ghost").status == 404)

            let subscribers = try await broker.http().get("/v1/subscribers?event_type=tx")
            #expect(subscribers.text == #"{"subscribers":["indexer"]}"#)
            #expect(try await broker.http().get("/v1/subscribers").status == 400)
            let wildcard = try await broker.http().get("/v1/subscribers?event_type=block.%2A")
            #expect(wildcard.status == 400)
            #expect((Self.error(wildcard)?["message"] as? String)?.hasPrefix("event_type: event_type") == false)

            let modules = try await broker.http().get("/v1/modules")
            let listed = try #require((modules.json?["modules"] as? [[String: Any]])?.first)
            #expect(listed["name"] as? String == "indexer")
            #expect(listed["version"] as? String == "1.0")
            // Connected on its own: the broker did not start it.
            #expect(listed["state"] as? String == "external")
            #expect(listed["pid"] is NSNull)
            #expect(listed["restarts"] as? Int == 0)
            #expect((listed["loaded_at"] as? String).flatMap { Timestamp.millisecondsSinceEpoch($0) } != nil)
        }
        for action in ["load", "unload", "reload"] {
            let response = try await broker.http().post("/v1/modules/indexer/\(action)")
            // This broker runs no supervisor (ModuleSupervisorTests covers the actions).
            #expect(response.status == 503)
            #expect(Self.error(response)?["code"] as? String == "not_ready")
        }
        try await broker.stop()
    }

    // MARK: Groups and dead letters

    @Test func groupsShowLagAndDeadLettersCanBeListedReplayedAndPurged() async throws {
        let broker = try await Self.start()
        try await broker.withModule("worker") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["tx.#"],"group":"workers"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            _ = try await broker.http().post("/v1/events", json: Self.event("doomed", key: "k"))
            #expect(try await client.receive()?.contains(#""event_id":"doomed""#) == true)
            let groups = try await broker.http().get("/v1/groups")
            let group = try #require((groups.json?["groups"] as? [[String: Any]])?.first)
            #expect(group["name"] as? String == "workers")
            #expect(group["topics"] as? [String] == ["tx.#"])
            #expect(group["members"] as? Int == 1)
            let partitions = try #require(group["partitions"] as? [[String: Any]])
            #expect(partitions.count == 2)
            #expect(partitions.map { $0["lag"] as? Int }.reduce(0) { $0 + ($1 ?? 0) } == 1)
            #expect(partitions.contains { $0["oldest_unacked_age_ms"] is Int })
            #expect(partitions.contains { $0["oldest_unacked_age_ms"] is NSNull })

            try await client.send(#"{"op":"nack","subscription":1,"seq":1,"dead_letter":true}"#)
            let queue = try #require(broker.broker.groups?.group(named: "workers"))
            try await waitUntil { queue.deadLetterCount == 1 }
            let letters = try await broker.http().get("/v1/groups/workers/dead-letters")
            #expect(letters.status == 200)
            let listed = try #require(letters.json?["dead_letters"] as? [[String: Any]])
            #expect(listed.map { $0["event_id"] as? String } == ["doomed"])
            #expect((listed.first?["metadata"] as? [String: String])?["dead_letter_reason"] == "nack")

            // Replayed into the group: delivered again, a fresh first attempt, and gone from the queue.
            let replay = try await broker.http().post("/v1/groups/workers/dead-letters/replay")
            #expect(replay.text == #"{"kept":0,"replayed":1}"#)
            let again = try #require(try await client.receive())
            #expect(again.contains(#""seq":2,"attempt":1"#) && again.contains(#""event_id":"doomed""#))
            #expect(queue.deadLetterCount == 0)

            try await client.send(#"{"op":"nack","subscription":1,"seq":2,"dead_letter":true}"#)
            try await waitUntil { queue.deadLetterCount == 1 }
            let purge = try await broker.http().delete("/v1/groups/workers/dead-letters")
            #expect(purge.text == #"{"purged":1}"#)
            let empty = try await broker.http().get("/v1/groups/workers/dead-letters")
            #expect((empty.json?["dead_letters"] as? [Any])?.isEmpty == true)
        }
        #expect(try await broker.http().get("/v1/groups/ghost/dead-letters").status == 404)
        #expect(try await broker.http().delete("/v1/groups/ghost/dead-letters").status == 404)
        // A name no group can have is bad input (§9: 400), not an unknown group.
        let malformed = try await broker.http().get("/v1/groups/BAD%21/dead-letters")
        #expect(malformed.status == 400)
        #expect(Self.error(malformed)?["code"] as? String == "invalid_request")
        try await broker.stop()
    }

    // MARK: Tokens

    @Test func tokensGuardEveryEndpointButHealthz() async throws {
        let broker = try await Self.start { $0.tokens = Self.tokens }
        #expect(try await broker.http().get("/healthz").status == 200)
        for path in ["/readyz", "/v1/stats", "/v1/events?topic=tx.%23", "/v1/groups", "/v1/modules"] {
            let anonymous = try await broker.http().get(path)
            #expect(anonymous.status == 401, "\(path)")
            #expect(Self.error(anonymous)?["code"] as? String == "unauthorized")
            #expect(try await broker.http(token: "wrong").get(path).status == 401, "\(path)")
            #expect(try await broker.http(token: "ui-secret").get(path).status == 200, "\(path)")
        }
        let basic = try await broker.http().request(
            "GET", "/v1/stats", headers: [("Authorization", "Basic dWk6dWktc2VjcmV0")])
        #expect(basic.status == 401)
        // A 401 names the scheme it takes (RFC 9110 §15.5.2), whose name is case-insensitive (§11.1).
        #expect(basic.header("www-authenticate") == #"Bearer realm="herald""#)
        let lowercase = try await broker.http().request(
            "GET", "/v1/stats", headers: [("Authorization", "bearer ui-secret")])
        #expect(lowercase.status == 200)
        let noToken = try await broker.http().request("GET", "/v1/stats", headers: [("Authorization", "Bearer")])
        #expect(noToken.status == 401)
        try await broker.stop()
    }

    @Test func aTokensPatternsLimitWhatItPublishesAndReplays() async throws {
        let broker = try await Self.start { $0.tokens = Self.tokens }
        let ui = broker.http(token: "ui-secret")
        let forbidden = try await ui.post("/v1/events", json: Self.event("x"))
        #expect(forbidden.status == 403)
        #expect(Self.error(forbidden)?["code"] as? String == "forbidden")
        #expect(Self.error(forbidden)?["index"] as? Int == 0)
        let allowed = try await ui.post("/v1/events", json: Self.event("n", type: "notification"))
        #expect(allowed.status == 200)
        #expect(try await ui.get("/v1/events?topic=tx.%23").status == 200)
        #expect(try await ui.get("/v1/events?topic=%23").status == 403)
        // Changing the broker takes an admin token.
        #expect(try await ui.delete("/v1/stats/anyone").status == 403)
        #expect(try await broker.http(token: "ops-secret").delete("/v1/stats/anyone").status == 404)
        try await broker.stop()
    }
}
