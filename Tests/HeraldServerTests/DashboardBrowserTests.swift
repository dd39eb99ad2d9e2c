import Foundation
import HeraldCore
import Testing

@testable import HeraldServer

/// The dashboard (`GET /`) in a real browser: headless Chromium (installed by `make test`) loads the page
/// from a running broker, which runs its script against the API and the WebSocket; the test reads the DOM
/// it built.
@Suite(.timeLimit(.minutes(3)))
struct DashboardBrowserTests {
    /// Chromium on the `PATH`, or a failure saying how to get it.
    static func chromium() throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for directory in directories {
            for name in ["chromium", "chromium-browser"]
            where FileManager.default.isExecutableFile(
                atPath: "\(directory)/\(name)")
            {
                return "\(directory)/\(name)"
            }
        }
        throw BrowserMissing()
    }

    struct BrowserMissing: Error, CustomStringConvertible {
        var description: String { "chromium is not installed: `make test` installs it (apt-get install chromium)" }
    }

    /// The DOM of `url` once the page's script ran for a few seconds of virtual time and its event stream
    /// is open. Chromium's virtual time does not wait for a WebSocket's handshake: on a loaded machine
    /// (a full test run on two cores) the budget can pass before the stream opens, and the DOM still says
    /// "stream closed" (seen once in a clean-clone CI run). The page is then loaded again, up to five times,
    /// as a user would look again; the last DOM is returned whatever it says.
    static func dumpDOM(_ url: String) async throws -> String {
        let browser = try chromium()
        var dom = ""
        for _ in 0..<5 {
            // A profile of its own per load, removed after it (a few megabytes each).
            let profile = NSTemporaryDirectory() + "herald-chromium-" + UUID().uuidString.prefix(8)
            defer { try? FileManager.default.removeItem(atPath: profile) }
            let run = try HeraldRun.start(
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--virtual-time-budget=5000",
                    "--user-data-dir=" + profile, "--dump-dom", url,
                ], program: browser)
            dom = await run.finishWithOutput().output
            if dom.contains(#"<span id="ws">streaming "#) { break }
        }
        return dom
    }

    @Test func thePageShowsEventsModulesSubscribersAndGroups() async throws {
        let broker = try await TestBroker.start(durable: true, http: true)
        try await broker.withModule("watcher") { (client: inout Conversation) async throws in
            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["block.#"],"buffer":1}"#)
            _ = try await client.request(#"{"op":"subscribe","id":2,"topics":["block.#"],"group":"indexers"}"#)
            // The watcher reads nothing: large events fill its socket, then its one-event queue drops.
            let filler = String(repeating: "x", count: 60_000)
            var fillers = 0
            while (broker.broker.bus.deliveryStatistics(for: "watcher")?.channelFull ?? 0) == 0 {
                fillers += 1
                try #require(fillers <= 200, "the watcher's queue never dropped")
                let published = try await broker.http().post(
                    "/v1/events", json: #"{"event_type":"block.filler","payload":"\#(filler)"}"#)
                #expect(published.status == 200)
            }
            // More stored events than a page of the API holds, before the newest: the page still shows these.
            for batch in 0..<2 {
                let older = (0..<1000).map { #"{"event_type":"tx.old","event_id":"old-\#(batch)-\#($0)"}"# }
                let stored = try await broker.http().post(
                    "/v1/events", json: #"{"events":["# + older.joined(separator: ",") + "]}")
                #expect(stored.status == 200)
            }
            let events = (1...3).map {
                #"{"event_type":"block.new","chain_id":1,"event_id":"dash-\#($0)","payload":{"number":\#($0)}}"#
            }
            let published = try await broker.http().post(
                "/v1/events", json: #"{"events":["# + events.joined(separator: ",") + "]}")
            #expect(published.status == 200)

            let dom = try await Self.dumpDOM("http://\(broker.gateway!.address)/")
            // The stored events, newest first, in the live stream.
            for id in ["dash-1", "dash-2", "dash-3"] { #expect(dom.contains(#"data-id="\#(id)""#), "\(id)") }
            #expect(dom.contains("block.new.1"))
            // The module, its subscriber row with its drops marked, the group with its lag.
            #expect(dom.contains(#"<tr data-module="watcher"><td>watcher</td><td class="muted">1.0</td>"#))
            #expect(dom.contains(#"<tr data-subscriber="watcher">"#))
            #expect(dom.contains(#"class="num bad">"#))
            #expect(dom.contains(#"<div class="group" data-group="indexers">"#))
            #expect(dom.contains(#"<span id="ready">ready</span>"#))
            #expect(dom.contains(#"<span id="ws">streaming #</span>"#))
        }
        try await broker.stop()
    }

    /// More than a page of the API in the last 15 minutes, none in the last 2: the page shows the newest.
    @Test func thePageShowsTheNewestStoredEventsWhenNoneIsRecent() async throws {
        let broker = try await TestBroker.start(durable: true, http: true)
        let log = try #require(broker.broker.log)
        let start = Timestamp.currentMilliseconds() - 5 * 60 * 1000
        // On a thread of its own, as appending holds the thread.
        try await onOwnThread {
            for index in 0..<1500 {
                _ = try log.append(partition: 0, timestamp: start + Int64(index)) { offset in
                    var fields = EnvelopeFields(eventType: "tx.aged")
                    fields.eventID = "aged-\(index)"
                    fields.offset = offset
                    fields.partition = 0
                    fields.timestamp = Timestamp.format(millisecondsSinceEpoch: start + Int64(index))
                    return EventEnvelope(sealing: fields).json
                }
            }
        }
        try await log.flush()
        let dom = try await Self.dumpDOM("http://\(broker.gateway!.address)/")
        #expect(dom.contains(#"<span id="ws">streaming #</span>"#))
        // The newest 50 stored: the aged ones, after the few the broker stored itself as it started.
        for shown in ["aged-1460", "aged-1499"] { #expect(dom.contains(#"data-id="\#(shown)""#), "\(shown)") }
        #expect(!dom.contains(#"data-id="aged-1449""#))
        try await broker.stop()
    }

    @Test func withTokensThePageTakesTheTokenFromItsAddress() async throws {
        let broker = try await TestBroker.start(durable: true, http: true) {
            $0.tokens = [
                HeraldConfiguration.Token(
                    name: "ui", secret: "ui-secret", publish: [], subscribe: [try! TopicPattern("#")])
            ]
        }
        #expect(try await broker.http().get("/").status == 401)
        let page = try await broker.http().get("/?token=ui-secret")
        #expect(page.status == 200 && page.header("content-type") == "text/html; charset=utf-8")
        // Self-contained: nothing is loaded from anywhere else.
        #expect(!page.text.contains("http://") && !page.text.contains("https://") && !page.text.contains("src="))
        let dom = try await Self.dumpDOM("http://\(broker.gateway!.address)/?token=ui-secret")
        #expect(dom.contains(#"<span id="ready">ready</span>"#))
        #expect(dom.contains(#"<span id="ws">streaming #</span>"#))
        try await broker.stop()
    }
}
