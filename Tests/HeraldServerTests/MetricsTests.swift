import Foundation
import HeraldClient
import HeraldCore
import Testing

@testable import HeraldServer

/// `GET /metrics` (docs/operations.md): the Prometheus text exposition, parsed, with counters moving.
@Suite(.timeLimit(.minutes(3)))
struct MetricsTests {
    /// Samples by `name{labels}` (as exposed) from the exposition.
    /// The headers of a WebSocket upgrade request (RFC 6455 §4.1).
    static let upgradeHeaders = [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]

    /// Opens a WebSocket on `/v1/ws?topics=a` with `token`, and closes it once its subscription is confirmed.
    static func openWebSocket(_ broker: TestBroker, token: String) async throws {
        try await HeraldWebSocket.connect(address: broker.gateway!.address, path: "/v1/ws?topics=a", token: token) {
            (_: HeraldWebSocket, messages: HeraldWebSocket.Messages) async throws in
            var messages = messages.makeAsyncIterator()
            #expect(try await messages.next() == #"{"op":"ok","subscription":1}"#)
        }
    }

    static func scrape(_ broker: TestBroker, token: String? = nil) async throws -> [String: Double] {
        try await scrape(broker.http(token: token))
    }

    static func scrape(_ http: HeraldHTTPClient) async throws -> [String: Double] {
        let response = try await http.get("/metrics")
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        var samples: [String: Double] = [:]
        for line in response.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    /// The broker-wide counters, which have no label, on a broker of their own (`herald serve`): in this
    /// process every test's broker reports to one registry, so there another test's events count too.
    @Test func theEventCountersCountWhatThisBrokerAccepted() async throws {
        let directory = NSTemporaryDirectory() + "herald-metrics-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Nothing of the broker's own between the two scrapes.
        try "[housekeeping]\ncleanup_interval_ms = 0\nhealth_check_interval_ms = 0\ndisk_check_interval_ms = 0\n"
            .write(toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let run = try HeraldRun.start(
            ["serve", "--data-dir", directory + "/data", "--http", "127.0.0.1:0"], in: directory)
        let line = try #require(await run.firstLine())
        let http = HeraldHTTPClient(address: String(line.split(separator: "=").last!))
        try await waitUntilReady(http)
        let before = try await Self.scrape(http)
        let batch =
            #"{"events":[{"event_type":"tx","event_id":"a"},{"event_type":"tx","event_id":"a"},{"event_type":"tx","event_id":"b"}]}"#
        #expect(try await http.post("/v1/events", json: batch).status == 200)
        let after = try await Self.scrape(http)
        func gained(_ key: String) -> Double { (after[key] ?? 0) - (before[key] ?? 0) }
        #expect(gained("herald_events_published_total") == 2)
        #expect(gained("herald_events_stored_total") == 2)
        #expect(gained("herald_events_duplicates_total") == 1)
        #expect(gained("herald_log_fsync_duration_seconds_count") >= 1)
        kill(run.process.processIdentifier, SIGTERM)
        #expect(await run.finish().status == 0)
    }

    /// Polls `/readyz` until the broker has completed its start-up.
    private func waitUntilReady(_ http: HeraldHTTPClient) async throws {
        while try await http.get("/readyz").status != 200 { try await Task.sleep(for: .milliseconds(10)) }
    }

    @Test func countersAndGaugesMoveWithTheBroker() async throws {
        let broker = try await TestBroker.start(durable: true, http: true) { $0.log.persist = ["tx.#"] }
        let name = "metrics-" + UUID().uuidString.prefix(8).lowercased()
        let before = try await Self.scrape(broker)
        try await broker.withModule(name) { (client: inout Conversation) async throws in
            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["tx.#"],"group":"\#(name)"}"#)
            _ = try await client.request(#"{"op":"subscribe","id":2,"topics":["tx.#"],"buffer":1}"#)
            let batch =
                #"{"events":[{"event_type":"tx","event_id":"\#(name)-1"},{"event_type":"tx","event_id":"\#(name)-1"},{"event_type":"tx","event_id":"\#(name)-2"}]}"#
            #expect(try await broker.http().post("/v1/events", json: batch).status == 200)
            // Both events accounted for (written, or dropped at the full queue): one still being written would
            // be in neither series.
            try await waitUntil {
                let statistics = broker.broker.bus.deliveryStatistics(for: name)
                return (statistics?.successful ?? 0) + (statistics?.channelFull ?? 0) == 2
            }
            let after = try await Self.scrape(broker)
            func gained(_ key: String) -> Double { (after[key] ?? 0) - (before[key] ?? 0) }
            // The counters without a label are checked on a broker of their own
            // (theEventCountersCountWhatThisBrokerAccepted): here every test's broker adds to them.
            // Each write of live deliveries is one observation of their latency.
            #expect(gained("herald_delivery_latency_seconds_count") >= 1)
            #expect(gained("herald_delivery_latency_seconds_sum") > 0)
            let delivered = after[#"herald_events_delivered_total{module="\#(name)"}"#] ?? 0
            let dropped = after[#"herald_events_dropped_total{module="\#(name)",reason="channel_full"}"#] ?? 0
            // The live subscription (buffer 1) got the two events or dropped one of them.
            #expect(delivered + dropped == 2)
            // The group has two unacknowledged events: its lag shows them.
            let lag = after.filter { $0.key.hasPrefix(#"herald_group_lag_events{group="\#(name)""#) }
            #expect(lag.values.reduce(0, +) == 2)
            #expect(after[#"herald_group_dead_letters{group="\#(name)"}"#] == 0)
            #expect(after[#"herald_group_members{group="\#(name)"}"#] == 1)
            #expect((after["herald_log_bytes"] ?? 0) > 0)
            #expect((after["herald_log_segments"] ?? 0) >= 1)
            #expect(after[#"herald_connections{kind="ipc"}"#] != nil)
            #expect(after["herald_subscriptions"] != nil)
            // The group's first deliveries are timed from their acceptance, under the group's name.
            let groupLatency = #"herald_group_delivery_latency_seconds_count{group="\#(name)"}"#
            var scraped = after
            while (scraped[groupLatency] ?? 0) < 1 {
                try await Task.sleep(for: .milliseconds(5))
                scraped = try await Self.scrape(broker)
            }
            #expect(scraped[#"herald_group_delivery_latency_seconds_bucket{group="\#(name)",le="+Inf"}"#] ?? 0 >= 1)
        }
        try await broker.stop()
    }

    /// Statistics reset through the API do not take back from the counters what happened since the last
    /// scrape (a review saw 797 drops never counted: the counters grew only from scrape to scrape).
    /// A name the bus forgets (past its statistics limit) leaves the metrics; when it comes back its totals
    /// start again from zero, and its counters with them (computing what it gained then trapped).
    @Test func aModuleTheBusForgetsLeavesTheMetricsAndComesBackFromZero() {
        _ = testMetrics
        let metrics = BrokerMetrics()
        let name = "forgot-" + UUID().uuidString.prefix(8).lowercased()
        let series = #"herald_events_delivered_total{module="\#(name)"}"#
        func samples() -> [Substring] { testMetrics.emitToString().split(separator: "\n").filter { $0.contains(name) } }
        metrics.reportDeliveries([name: DeliveryStatistics(successful: 5)])
        #expect(samples().contains(series + " 5"))
        metrics.reportDeliveries([:])
        #expect(samples().isEmpty)
        metrics.reportDeliveries([name: DeliveryStatistics(successful: 2)])
        #expect(samples().contains(series + " 2"))
    }

    @Test func dropsAndDeliveriesBeforeAResetStillReachTheCounters() async throws {
        let broker = try await TestBroker.start(http: true)
        let name = "reset-" + UUID().uuidString.prefix(8).lowercased()
        let subscription = try broker.broker.bus.subscribe(
            [try TopicPattern("reset.test")], subscriber: name, buffer: 1, overflow: .dropNewest)
        let before = try await Self.scrape(broker)
        for index in 0..<3 {
            broker.broker.bus.publish(try EventEnvelope(eventType: "reset.test", eventID: "\(name)-\(index)"))
        }
        do {
            // The iterator counts what it handed out when it takes its next batch, or ends.
            var iterator = subscription.makeAsyncIterator()
            #expect(await iterator.next()?.eventID == "\(name)-0")
        }
        #expect(broker.broker.bus.deliveryStatistics(for: name) == DeliveryStatistics(successful: 1, channelFull: 2))
        #expect(try await broker.http().delete("/v1/stats/\(name)").status == 200)
        #expect(broker.broker.bus.deliveryStatistics(for: name) == DeliveryStatistics())
        let after = try await Self.scrape(broker)
        func gained(_ key: String) -> Double { (after[key] ?? 0) - (before[key] ?? 0) }
        #expect(gained(#"herald_events_dropped_total{module="\#(name)",reason="channel_full"}"#) == 2)
        #expect(gained(#"herald_events_delivered_total{module="\#(name)"}"#) == 1)
        try await broker.stop()
    }

    @Test func everyMetricFamilyHasOneHelpLineBeforeItsType() async throws {
        let broker = try await TestBroker.start(durable: true, http: true)
        #expect(try await broker.http().post("/v1/events", json: #"{"event_type":"tx"}"#).status == 200)
        let lines = try await broker.http().get("/metrics").text.split(separator: "\n")
        let types = lines.indices.filter { lines[$0].hasPrefix("# TYPE ") }
        #expect(types.count >= 10)
        for index in types {
            let name = lines[index].dropFirst(7).prefix { $0 != " " }
            #expect(index > 0 && lines[index - 1].hasPrefix("# HELP \(name) "), "\(name) has no help line")
        }
        #expect(lines.filter { $0.hasPrefix("# HELP ") }.count == types.count)
        try await broker.stop()
    }

    @Test func helpLinesGoBeforeTypesAndKeepTheRestAsItWas() {
        let exposition = "# TYPE herald_log_bytes gauge\nherald_log_bytes 3\n# TYPE other counter\nother 1\n"
        #expect(
            MetricHelp.adding(to: exposition)
                == "# HELP herald_log_bytes Bytes of records in the durable log's segments.\n" + exposition)
        #expect(MetricHelp.adding(to: "") == "")
        #expect(MetricHelp.adding(to: "x 1") == "x 1")
    }

    @Test func httpRequestsAreCountedAndTimedByRouteAndStatus() async throws {
        let broker = try await TestBroker.start(http: true) {
            $0.tokens = [
                .init(name: "ops", secret: "ops-secret", publish: [], subscribe: [try! TopicPattern("a")], admin: true)
            ]
        }
        let http = broker.http(token: "ops-secret")
        let before = try await Self.scrape(broker, token: "ops-secret")
        #expect(try await http.get("/v1/groups/nobody/dead-letters").status == 404)
        #expect(try await http.get("/v1/groups/nobody/dead-letters").status == 404)
        #expect(try await broker.http().get("/v1/stats").status == 401)
        #expect(try await broker.http(token: "wrong").get("/v1/stats").status == 401)
        let path = "/no/such/path/\(UUID().uuidString)"
        #expect(try await http.get(path).status == 404)
        // WebSocket upgrades, answered before the router: one refused for its token, one accepted.
        let upgrade = Self.upgradeHeaders
        #expect(try await broker.http().request("GET", "/v1/ws?topics=a&token=wrong", headers: upgrade).status == 401)
        try await Self.openWebSocket(broker, token: "ops-secret")
        let after = try await Self.scrape(broker, token: "ops-secret")
        // The registry is the test process's, shared with tests running meanwhile: at least these requests.
        func gained(_ key: String) -> Double { (after[key] ?? 0) - (before[key] ?? 0) }
        // By the matched route's pattern, not the path.
        #expect(
            gained(
                #"herald_http_requests_total{method="GET",route="/v1/groups/{group}/dead-letters",status="404",token="ops"}"#
            )
                >= 2)
        #expect(
            gained(#"herald_http_request_duration_seconds_count{method="GET",route="/v1/groups/{group}/dead-letters"}"#)
                >= 2)
        // Refused requests by what they presented: nothing, or a token that is not configured.
        #expect(
            gained(#"herald_http_requests_total{method="GET",route="/v1/stats",status="401",token="anonymous"}"#) >= 1)
        #expect(
            gained(#"herald_http_requests_total{method="GET",route="/v1/stats",status="401",token="invalid"}"#) >= 1)
        #expect(gained(#"herald_http_requests_total{method="GET",route="/v1/ws",status="401",token="invalid"}"#) >= 1)
        #expect(gained(#"herald_http_requests_total{method="GET",route="/v1/ws",status="101",token="ops"}"#) >= 1)
        #expect(gained(#"herald_http_request_duration_seconds_count{method="GET",route="/v1/ws"}"#) >= 2)
        // A path no route matches is one series, whatever the path.
        #expect(gained(#"herald_http_requests_total{method="GET",route="unmatched",status="404",token="ops"}"#) >= 1)
        #expect(!after.keys.contains { $0.contains("nobody") || $0.contains(path) })
        // The scrape before this one was counted too.
        #expect(gained(#"herald_http_requests_total{method="GET",route="/metrics",status="200",token="ops"}"#) >= 1)
        try await broker.stop()
    }

    /// An upgrade request is answered, and counted once with that status: 101 only when it is upgraded.
    @Test func webSocketUpgradesAreCountedWithTheStatusTheyAreAnswered() async throws {
        // A token no other test uses: the registry is the test process's, and these counts are exact.
        let broker = try await TestBroker.start(http: true) {
            $0.tokens = [
                .init(
                    name: "upgrade-counted", secret: "upgrade-secret", publish: [], subscribe: [try! TopicPattern("a")],
                    admin: true)
            ]
        }
        let upgrade = Self.upgradeHeaders
        let before = try await Self.scrape(broker, token: "upgrade-secret")
        let http = broker.http(token: "upgrade-secret")
        // Upgrades NIO would not make, refused before it: another protocol, two keys, no `Connection: Upgrade`.
        let h2c = try await http.request(
            "GET", "/v1/ws?topics=a", headers: upgrade.map { $0.0 == "Upgrade" ? ($0.0, "h2c") : $0 })
        #expect(h2c.status == 426)
        #expect(h2c.header("upgrade") == "websocket")
        #expect(h2c.text.contains("Upgrade: /v1/ws upgrades to websocket only"))
        let twoKeys = try await http.request(
            "GET", "/v1/ws?topics=a",
            headers: upgrade.map { $0.0 == "Sec-WebSocket-Key" ? ($0.0, "\($0.1), AAAAAAAAAAAAAAAAAAAAAA==") : $0 })
        #expect(twoKeys.status == 400)
        #expect(twoKeys.text.contains("Sec-WebSocket-Key: must be one key"))
        let keptAlive = try await http.request(
            "GET", "/v1/ws?topics=a", headers: upgrade.map { $0.0 == "Connection" ? ($0.0, "keep-alive") : $0 })
        #expect(keptAlive.status == 400)
        #expect(keptAlive.text.contains("Connection: must include Upgrade"))
        try await Self.openWebSocket(broker, token: "upgrade-secret")
        let after = try await Self.scrape(broker, token: "upgrade-secret")
        func gained(_ status: Int) -> Double {
            let key =
                #"herald_http_requests_total{method="GET",route="/v1/ws",status="\#(status)",token="upgrade-counted"}"#
            return (after[key] ?? 0) - (before[key] ?? 0)
        }
        #expect(gained(426) == 1)
        #expect(gained(400) == 2)
        #expect(gained(101) == 1)
        try await broker.stop()
    }
}
