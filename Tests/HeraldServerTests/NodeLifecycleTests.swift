import Foundation
import HeraldClient
import HeraldCore
import Logging
import Testing

@testable import HeraldServer

/// EVENTS.md's node lifecycle order, from `herald serve` with a module: as the module sees it, and as the
/// log stores it.
@Suite(.timeLimit(.minutes(3)))
struct NodeLifecycleTests {
    /// The lifecycle events of `types`, in order, up to the first `node.shutdown_completed`.
    private static let lifecycle: Set<String> = [
        "config.loaded", "module.loaded", "module.unloaded", "node.startup_completed", "node.shutdown",
        "maintenance.data", "node.shutdown_completed",
    ]

    /// EVENTS.md: SIGTERM/SIGINT is `reason: "signal"`, whenever it comes; `startup_failed` is a listener that
    /// could not start. A shutdown that began before the start-up completed ends it: no
    /// `node.startup_completed` follows `node.shutdown`.
    @Test(arguments: [
        ("signal before startup", "signal"), ("signal after startup", "signal"), ("failure", "startup_failed"),
    ])
    func theShutdownSaysWhyAndEndsTheStartup(_ case: String, reason: String) async throws {
        let broker = Broker(configuration: HeraldConfiguration(), logger: Logger(label: "lifecycle-test"))
        let subscription = try broker.bus.subscribe(
            [try TopicPattern("node.#")], subscriber: "watcher", buffer: 10, overflow: .dropNewest)
        let completedFirst = `case` == "signal after startup"
        if completedFirst { broker.completeStartup(components: []) }
        if `case` == "failure" { broker.startupFailed() } else { broker.beginShutdown() }
        // A failure reported once the startup completed changes nothing; a startup completing after the
        // shutdown began is not told.
        broker.startupFailed()
        broker.completeStartup(components: [])
        broker.publish(NodeShutdownCompleted(durationMs: 0))
        var types: [String] = []
        var shutdownPayload = ""
        for await event in subscription {
            types.append(event.eventType)
            if event.eventType == "node.shutdown" {
                shutdownPayload = String(decoding: event.payload?.bytes ?? [], as: UTF8.self)
            }
            if event.eventType == "node.shutdown_completed" { break }
        }
        #expect(
            types
                == (completedFirst ? ["node.startup_completed"] : [])
                + ["node.shutdown", "node.shutdown_completed"])
        #expect(shutdownPayload.contains(#""reason":"\#(reason)""#))
        #expect(broker.isReady == false)
    }

    /// `node.startup_completed`'s `duration_ms` counts from when `herald serve` began (reading the
    /// configuration, recovering the log), not from when the broker object was made after them.
    @Test func theStartupDurationCountsFromWhenTheStartupBegan() async throws {
        let broker = Broker(
            configuration: HeraldConfiguration(), logger: Logger(label: "lifecycle-test"),
            startupBegan: .now - .seconds(5))
        let subscription = try broker.bus.subscribe(
            [try TopicPattern("node.startup_completed")], subscriber: "watcher", buffer: 10, overflow: .dropNewest)
        broker.completeStartup(components: [])
        var iterator = subscription.makeAsyncIterator()
        let event = try #require(await iterator.next())
        let payload = try #require(
            try JSONSerialization.jsonObject(with: Data(event.payload?.bytes ?? [])) as? [String: Any])
        #expect((payload["duration_ms"] as? Int ?? 0) >= 5000)
    }

    @Test func startupAndShutdownHappenInOrderAndAreStored() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        // It leaves once it has seen the shutdown's flush request, as a module that flushed would: with a short
        // `shutdown_timeout_ms` instead, a machine busy with the whole suite could stop it before it wrote
        // down what it saw.
        try modules.add("witness", arguments: ["--subscribe", "#", "--exit-after", "maintenance.data"])
        let directory = modules.directory + "-node"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "[modules]\nshutdown_timeout_ms = 20000\n".write(
            toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let arguments = [
            "serve", "--data-dir", directory + "/data", "--http", "127.0.0.1:0", "--modules-dir", modules.directory,
        ]
        let run = try HeraldRun.start(arguments, in: directory)
        let line = try #require(await run.firstLine())
        let http = HeraldHTTPClient(address: String(line.split(separator: "=").last!))
        while try await http.get("/readyz").status != 200 { try await Task.sleep(for: .milliseconds(10)) }
        let modulesList = try await http.get("/v1/modules").json?["modules"] as? [[String: Any]]
        #expect(modulesList?.first?["state"] as? String == "running")
        kill(run.process.processIdentifier, SIGTERM)
        let (status, _) = await run.finish()
        #expect(status == 0)

        // What the module saw, as it was told.
        let seen = try await ModuleFixture.written(directory + "/data", module: "witness", file: "events.txt")
            .split(separator: "\n").map(String.init).filter(Self.lifecycle.contains)
        #expect(seen == ["module.loaded", "node.startup_completed", "node.shutdown", "maintenance.data"])

        // What the log stored, read back by the next start of the broker.
        let next = try HeraldRun.start(
            ["serve", "--data-dir", directory + "/data", "--http", "127.0.0.1:0"], in: directory)
        let nextLine = try #require(await next.firstLine())
        let replay = HeraldHTTPClient(address: String(nextLine.split(separator: "=").last!))
        let events =
            try await replay.get("/v1/events?topic=%23&from=earliest&limit=1000").json?["events"] as? [[String: Any]]
            ?? []
        kill(next.process.processIdentifier, SIGTERM)
        _ = await next.finish()
        let stored = events.map { ($0["event_type"] as? String ?? "", $0["payload"] as? [String: Any] ?? [:]) }
        let firstRun =
            stored.prefix { $0.0 != "node.shutdown_completed" }
            + stored.filter { $0.0 == "node.shutdown_completed" }.prefix(1)
        #expect(
            firstRun.map(\.0).filter(Self.lifecycle.contains) == [
                "config.loaded", "module.loaded", "node.startup_completed", "node.shutdown", "maintenance.data",
                "module.unloaded", "node.shutdown_completed",
            ])
        let payload = { (type: String) in firstRun.first { $0.0 == type }?.1 ?? [:] }
        #expect(payload("config.loaded")["changed_sections"] as? [String] == ["data_dir", "http", "modules"])
        #expect((payload("node.startup_completed")["components"] as? [String])?.contains("modules") == true)
        #expect(payload("node.shutdown")["reason"] as? String == "signal")
        #expect(payload("maintenance.data")["operation"] as? String == "flush")
        #expect(payload("maintenance.data")["urgency"] as? String == "high")
        #expect(payload("maintenance.data")["reason"] as? String == "shutdown")
        #expect(payload("maintenance.data")["timeout_seconds"] as? Int == 20)
        #expect(payload("module.unloaded")["reason"] as? String == "stopped")
        #expect(payload("node.shutdown_completed")["duration_ms"] is Int)
        // The broker's own flush on `node.shutdown` ran between `maintenance.started` and
        // `maintenance.completed`, both stored before `node.shutdown_completed`.
        let maintenance = firstRun.filter { $0.0.hasPrefix("maintenance.") && $0.0 != "maintenance.data" }
        #expect(maintenance.map(\.0) == ["maintenance.started", "maintenance.completed"])
        #expect(payload("maintenance.completed")["maintenance_type"] as? String == "data.flush")
        #expect(payload("maintenance.completed")["success"] as? Bool == true)
    }
}
