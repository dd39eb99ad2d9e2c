import Foundation
import HeraldClient
import HeraldCore
import Logging
import Synchronization
import Testing

@testable import HeraldServer

/// Lifecycle events a watcher connection saw, in order.
struct SeenEvent {
    let type: String
    let payload: [String: Any]

    var module: String? { payload["module_name"] as? String }
    var reason: String? { payload["reason"] as? String }

    /// `type` and, when the event names one, its module: `module.loaded alpha`.
    var summary: String { [type, module, reason].compactMap { $0 }.joined(separator: " ") }
}

extension Conversation {
    /// Subscribes to `module.#`, runs `action`, and collects events until `done` holds for the events seen
    /// so far, answering the broker's pings meanwhile. The `module.loaded` events the broker replays for the
    /// `replayed` modules loaded before the watcher (PROTOCOL.md §3) are left out, and so are the watcher's own.
    mutating func watch(
        replayed: Int = 0, until done: ([SeenEvent]) -> Bool,
        while action: @escaping @Sendable () async throws -> Void = {}
    ) async throws -> [SeenEvent] {
        _ = try await request(#"{"op":"subscribe","id":99,"topics":["module.#"]}"#)
        var replays = replayed
        var seen: [SeenEvent] = []
        let acting = Task { try await action() }
        defer { acting.cancel() }
        // A watch that waits longer than any test should says what it saw, so that a hang in a full run
        // (where these tests have hung now and then, cause not found) leaves a trace in the log.
        let progress = WatchProgress()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(30))
            print("module watch still waiting after 30 s: \(progress.text)")
        }
        defer { watchdog.cancel() }
        while !done(seen) {
            guard let frame = try await receive() else { break }
            if frame == #"{"op":"ping"}"# {
                try await send(#"{"op":"pong"}"#)
                continue
            }
            guard let object = try JSONSerialization.jsonObject(with: Data(frame.utf8)) as? [String: Any],
                object["op"] as? String == "event", let event = object["event"] as? [String: Any]
            else { continue }
            let type = event["event_type"] as? String ?? ""
            let seenEvent = SeenEvent(type: type, payload: event["payload"] as? [String: Any] ?? [:])
            if seenEvent.module == "watcher" { continue }
            if replays > 0, seenEvent.type == "module.loaded" {
                replays -= 1
                continue
            }
            seen.append(seenEvent)
            progress.set("seen \(seen.map(\.summary))")
        }
        progress.set("seen \(seen.map(\.summary)); every event came, waiting for the action to end")
        try await acting.value
        return seen
    }
}

/// What a module watch has seen so far, for its watchdog.
final class WatchProgress: Sendable {
    private let state = Mutex<String>("nothing seen")

    var text: String { state.withLock { $0 } }

    func set(_ text: String) { state.withLock { $0 = text } }
}

/// The module supervisor with real child processes (`ModuleFixture.script`, Python): start order,
/// environment and tokens, output capture, crashes and restarts, stopping, health, and control over HTTP.
@Suite(.timeLimit(.minutes(3)))
struct ModuleSupervisorTests {
    /// The fixture modules do not leave on `node.shutdown`: the broker stops them after this short timeout
    /// instead of the default 5 s.
    private func quickStop(_ configuration: inout HeraldConfiguration) {
        configuration.modules.shutdownTimeoutMs = 200
    }

    @Test func modulesStartInDependencyOrderWithTheirEnvironmentAndAFreshToken() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "alpha", arguments: ["--flag"],
            extra: "depends_on = [\"beta\"]\n[env]\nFIXTURE = \"set\"\n[limits]\nopen_files = 100\nmemory_mb = 700")
        try modules.add("beta")
        try modules.add("gamma", extra: #"depends_on = ["alpha"]"#)
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = try #require(broker.supervisor)
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 3 }, while: { await supervisor.startAll() })
        }
        #expect(seen.map(\.summary) == ["module.loaded beta", "module.loaded alpha", "module.loaded gamma"])
        let text = try await ModuleFixture.written(broker.directory, module: "alpha", file: "env.json")
        let env = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(env["HERALD_MODULE_NAME"] as? String == "alpha")
        #expect(env["HERALD_SOCKET"] as? String == URL(fileURLWithPath: broker.socketPath).standardizedFileURL.path)
        #expect(
            env["HERALD_DATA_DIR"] as? String
                == URL(fileURLWithPath: broker.directory + "/module-data/alpha").standardizedFileURL.path)
        #expect(env["FIXTURE"] as? String == "set")
        #expect(env["args"] as? [String] == ["--flag"])
        #expect(env["cwd"] as? String == URL(fileURLWithPath: modules.directory + "/alpha").standardizedFileURL.path)
        let token = try #require(env["HERALD_TOKEN"] as? String)
        #expect(token.count == 64)
        let betaText = try await ModuleFixture.written(broker.directory, module: "beta", file: "env.json")
        #expect(!betaText.contains(token))
        let started = supervisor.statuses.filter { $0.state != .external }
        // [limits] apply to the module's process, not to the broker's.
        let limits = try String(contentsOfFile: "/proc/\(started[0].pid ?? 0)/limits", encoding: .utf8)
        let lines = limits.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("Max open files") && $0.split(separator: " ").contains("100") })
        #expect(lines.contains { $0.hasPrefix("Max data size") && $0.split(separator: " ").contains("734003200") })
        let own = try String(contentsOfFile: "/proc/self/limits", encoding: .utf8).split(separator: "\n")
        #expect(!own.contains { $0.hasPrefix("Max open files") && $0.split(separator: " ").contains("100") })
        #expect(started.map(\.name) == ["alpha", "beta", "gamma"])
        #expect(started.map(\.state) == [.running, .running, .running])
        #expect(started.allSatisfy { $0.pid != nil && $0.health == .healthy && $0.loadedAt != nil })
        try await broker.stop()
        // The shutdown stopped every process.
        #expect(supervisor.statuses.map(\.state) == [.stopped, .stopped, .stopped])
    }

    @Test func theIssuedTokenCarriesTheManifestPermissionsAndOnlyForItsModule() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "limited",
            arguments: ["--publish", "allowed.thing,denied.thing", "--also-subscribe", "block.#"],
            extra: "[permissions]\npublish = [\"allowed.#\"]\nsubscribe = [\"module.#\"]")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        await broker.supervisor!.startAll()
        let replies = try await ModuleFixture.written(broker.directory, module: "limited", file: "replies.txt")
        // Written after the last publish.
        var all = replies
        while all.split(separator: "\n").count < 3 {
            all = try await ModuleFixture.written(broker.directory, module: "limited", file: "replies.txt")
        }
        #expect(
            all.split(separator: "\n") == [
                "subscribe error forbidden", "publish allowed.thing ok ", "publish denied.thing error forbidden",
            ])
        // Issued tokens make tokens mandatory for no one else, and serve only their own module.
        try await broker.withModule("anyone") { client in
            let reply = try await client.request(#"{"op":"subscribe","id":1,"topics":["block.#"]}"#)
            #expect(reply?.contains(#""op":"ok""#) == true)
        }
        let env = try await ModuleFixture.written(broker.directory, module: "limited", file: "env.json")
        let token = try #require(
            (try JSONSerialization.jsonObject(with: Data(env.utf8)) as? [String: Any])?["HERALD_TOKEN"] as? String)
        try await broker.withConnection { client in
            let reply = try await client.request(
                #"{"op":"hello","id":1,"protocol":1,"module":{"name":"impostor","version":"1"},"token":""# + token
                    + #""}"#)
            #expect(reply?.contains(#""code":"unauthorized""#) == true)
            #expect(reply?.contains("issued to module 'limited'") == true)
        }
        try await broker.stop()
    }

    @Test func outputIsLoggedLineByLineWithoutBlockingTheModule() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("chatty", arguments: ["--spam", "4000000"])
        let records = RecordingLogHandler.Records()
        let broker = try await TestBroker.start(
            modules: modules.directory, logger: RecordingLogHandler.logger(records), quickStop)
        await broker.supervisor!.startAll()
        // 4 MB on stdout before its hello: a module blocked on a full pipe would never load.
        #expect(broker.supervisor!.statuses.first?.state == .running)
        try await waitUntil { records.all.contains { $0.hasPrefix("info spam-done module=chatty ") } }
        let lines = records.all.filter {
            $0.contains("module.stream=stdout") && $0.contains(String(repeating: "x", count: 99))
        }
        #expect(lines.count == 4_000_000 / 100)
        try await broker.stop()
    }

    @Test func aCrashPublishesCrashedThenUnloadedAndRestartsWithBackoffUntilMaxRestarts() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "fragile", arguments: ["--exit-after-load", "3", "--stderr", "boom: out of luck"],
            extra: "[restart]\npolicy = \"on-failure\"\nbackoff_ms = 100\nmax_restarts = 2")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        let started = ContinuousClock.now
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 9 }, while: { await supervisor.startAll() })
        }
        #expect(
            seen.map(\.summary)
                == Array(
                    repeating: ["module.loaded fragile", "module.crashed fragile", "module.unloaded fragile crashed"],
                    count: 3
                ).flatMap { $0 })
        let error = try #require(seen[1].payload["error"] as? String)
        #expect(error.hasPrefix("exit status 3"))
        #expect(error.contains("boom: out of luck"))
        // Backoff 100 ms, then 200 ms: at least 300 ms between the first start and the third.
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        try await waitUntil { supervisor.statuses.first?.state == .failed }
        let status = try #require(supervisor.statuses.first)
        #expect(status.restarts == 2)
        #expect(status.pid == nil)
        #expect(status.problem?.contains("max_restarts") == true)
        try await broker.stop()
    }

    /// §3: "a crash before loading still publishes `module.crashed`" — one whose process cannot even start.
    @Test func aModuleWhoseProgramCannotBeStartedCrashesWithTheReason() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("junk", executable: "\u{7f}ELF, but not really a program\n")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 1 }, while: { await supervisor.startAll() })
        }
        #expect(seen.map(\.summary) == ["module.crashed junk"])
        let error = try #require(seen.first?.payload["error"] as? String)
        #expect(error.hasPrefix("could not start: ") && error.contains("Exec format error"), "\(error)")
        #expect(supervisor.statuses.first?.state == .failed)
        try await broker.stop()
    }

    /// When a module's process exits, what is left of its process group is killed: a child that inherited
    /// the connection would otherwise keep the module loaded, and outlive every restart.
    @Test func whatAModuleLeavesBehindInItsProcessGroupIsKilledWhenItExits() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "parent", arguments: ["--leave-child", "--exit-after-load", "3"], extra: "[restart]\npolicy = \"never\"")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 3 }, while: { await supervisor.startAll() })
        }
        // The child's copy of the connection closed with it: the module was unloaded.
        #expect(
            seen.map(\.summary) == ["module.loaded parent", "module.crashed parent", "module.unloaded parent crashed"])
        let child = try #require(
            Int32(try await ModuleFixture.written(broker.directory, module: "parent", file: "child.pid").dropLast()))
        // Gone, or a zombie until whoever adopted it reaps it.
        try await waitUntil {
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8) else { return true }
            return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
        }
        try await broker.stop()
    }

    /// A child left in the group that floods the module's output does not hold back its exit: the group is
    /// killed before the pipes are drained (the drain never ended while the child wrote).
    /// A module restarted after a crash waits for its dependency to be loaded again: killed together, the
    /// dependent (backoff 10 ms) loads only after its dependency (backoff 500 ms). It was started as soon as
    /// its own backoff ended, dependency or not.
    @Test func aRestartWaitsForTheDependenciesToLoad() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("base", extra: "[restart]\nbackoff_ms = 500")
        try modules.add("upper", extra: "depends_on = [\"base\"]\n[restart]\nbackoff_ms = 10")
        let broker = try await TestBroker.start(durable: true, modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        #expect(supervisor.statuses.map(\.state) == [.running, .running])
        for status in supervisor.statuses { kill(try #require(status.pid), SIGKILL) }
        try await waitUntil {
            supervisor.statuses.map(\.state) == [.running, .running]
                && supervisor.statuses.allSatisfy { $0.restarts == 1 }
        }
        let loads = try await storedModuleEvents(broker, count: 8).map(\.summary).filter {
            $0.hasPrefix("module.loaded")
        }
        #expect(loads == ["module.loaded base", "module.loaded upper", "module.loaded base", "module.loaded upper"])
        try await broker.stop()
    }

    /// A module unloaded while `startAll` waits for its dependency to load is not started when the
    /// dependency loads: it was, right after the unload had answered `stopped`.
    @Test func aModuleUnloadedWhileItWaitsForItsDependencyIsNotStartedLater() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("base", arguments: ["--load-when-told"])
        try modules.add("upper", extra: "depends_on = [\"base\"]")
        let broker = try await TestBroker.start(modules: modules.directory) {
            quickStop(&$0)
            $0.modules.startupTimeoutMs = 60_000
        }
        let supervisor = broker.supervisor!
        let starting = Task { await supervisor.startAll() }
        try await waitUntil { supervisor.statuses.first { $0.name == "base" }?.pid != nil }
        #expect(try await supervisor.unload("upper").state == .stopped)
        try "go\n".write(toFile: broker.directory + "/module-data/base/load", atomically: true, encoding: .utf8)
        await starting.value
        let upper = try #require(supervisor.statuses.first { $0.name == "upper" })
        #expect(upper.state == .stopped)
        #expect(upper.pid == nil)
        #expect(supervisor.statuses.first { $0.name == "base" }?.state == .running)
        try await broker.stop()
    }

    /// A `load` of a module that loaded, then closed its connection and runs on (`starting` again) answers:
    /// it waited for a start that had settled long before, for ever, holding the module's control lock.
    @Test func aLoadOfAModuleThatLoadedAndDisconnectedAnswers() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("bouncy", arguments: ["--reconnect-after-load"])
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        _ = try await ModuleFixture.written(broker.directory, module: "bouncy", file: "closed")
        try await waitUntil { supervisor.gracesEnded.load(ordering: .acquiring) >= 1 }
        #expect(supervisor.statuses.first?.state == .starting)
        let status = try await supervisor.load("bouncy")
        #expect(status.state == .starting)
        #expect(status.pid != nil)
        try await broker.stop()
    }

    /// A module that used up `max_restarts` and is loaded again by an operator gets its restarts back: its
    /// first crash after the load was final, the window still counting the restarts before it.
    @Test func aModuleLoadedAgainAfterGivingUpGetsItsRestartsBack() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "crashy", arguments: ["--exit-after-load", "3"],
            extra: "[restart]\npolicy = \"always\"\nbackoff_ms = 10\nmax_restarts = 1")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        try await waitUntil {
            supervisor.statuses.first.map { $0.state == .failed && $0.restarts == 1 } ?? false
        }
        _ = try await supervisor.load("crashy")
        // Loaded, crashed, restarted once more (the window starts over at the load), crashed, stays down.
        try await waitUntil {
            supervisor.statuses.first.map { $0.state == .failed && $0.restarts == 2 } ?? false
        }
        try await broker.stop()
    }

    /// A module that closes its standard output and error runs on: its exit is noticed on its pidfd, not when
    /// both pipes close (it was killed with SIGKILL and reported crashed at once, and so at every restart).
    @Test func aModuleThatClosesItsOutputRunsOn() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("quiet", arguments: ["--close-output"], extra: "[restart]\npolicy = \"never\"")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        _ = try await ModuleFixture.written(broker.directory, module: "quiet", file: "closed")
        try "go\n".write(
            toFile: broker.directory + "/module-data/quiet/go", atomically: true, encoding: .utf8)
        // It wrote this after both pipes had closed: it was not killed when they did.
        _ = try await ModuleFixture.written(broker.directory, module: "quiet", file: "alive")
        let status = try #require(supervisor.statuses.first)
        #expect(status.state == .running)
        #expect(status.pid != nil)
        try await broker.stop()
    }

    @Test func aLeftoverChildFloodingTheOutputDoesNotHoldBackTheExit() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        let word = "flood-\(UInt32.random(in: 0...UInt32.max))"
        try modules.add(
            "flooder", arguments: ["--flood-child", word, "--exit-after-load", "3"],
            extra: "[restart]\npolicy = \"never\"")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 3 }, while: { await supervisor.startAll() })
        }
        #expect(
            seen.map(\.summary) == [
                "module.loaded flooder", "module.crashed flooder", "module.unloaded flooder crashed",
            ])
        #expect(supervisor.statuses.first?.state == .failed)
        // And the child is gone (or a zombie until whoever adopted it reaps it).
        try await waitUntil {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return !tasks.contains { task in
                guard let command = FileManager.default.contents(atPath: "/proc/\(task)/cmdline") else { return false }
                return String(decoding: command, as: UTF8.self).contains("--flood-child\u{0}\(word)")
            }
        }
        try await broker.stop()
    }

    @Test(arguments: [
        ("never", "3", ModuleState.failed, 0), ("on-failure", "0", .stopped, 0), ("always", "0", .failed, 1),
    ])
    func theRestartPolicyDecidesWhatAnExitLeads(to policy: String, exitCode: String, state: ModuleState, restarts: Int)
        async throws
    {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add(
            "once", arguments: ["--exit-after-load", exitCode],
            extra: "[restart]\npolicy = \"\(policy)\"\nbackoff_ms = 10\nmax_restarts = 1")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        try await waitUntil {
            supervisor.statuses.first?.state == state && supervisor.statuses.first?.restarts == restarts
        }
        #expect(supervisor.statuses.first?.pid == nil)
        try await broker.stop()
    }

    @Test func aModuleKilledWithSIGKILLCrashesAndIsRestarted() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("victim", extra: "[restart]\nbackoff_ms = 10")
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        let pid = try #require(supervisor.statuses.first?.pid)
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(replayed: 1, until: { $0.count == 3 }, while: { kill(pid, SIGKILL) })
        }
        #expect(
            seen.map(\.summary) == ["module.crashed victim", "module.unloaded victim crashed", "module.loaded victim"])
        #expect((seen[0].payload["error"] as? String)?.hasPrefix("killed by signal 9 (SIGKILL)") == true)
        #expect(supervisor.statuses.first?.restarts == 1)
        #expect(supervisor.statuses.first?.pid != pid)
        try await broker.stop()
    }

    @Test func aModuleThatNeverLoadsIsKilledAfterTheStartupTimeoutAndStaysDownUnderPolicyNever() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("shy", arguments: ["--no-load"], extra: "[restart]\npolicy = \"never\"")
        let broker = try await TestBroker.start(modules: modules.directory) {
            quickStop(&$0)
            $0.modules.startupTimeoutMs = 300
        }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        try await waitUntil { supervisor.statuses.first?.state == .failed }
        let status = try #require(supervisor.statuses.first)
        #expect(
            status.problem
                == "not loaded within modules.startup_timeout_ms (300 ms); killed by signal 15 (SIGTERM); restart policy never"
        )
        #expect(status.pid == nil)
        #expect(status.restarts == 0)
        try await broker.stop()
    }

    @Test func aModuleThatReconnectsWithinTheGraceIsUnloadedThenLoadedAndRuns() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("bouncy", arguments: ["--reconnect-after-load"])
        let broker = try await TestBroker.start(http: true, modules: modules.directory) { quickStop(&$0) }
        let supervisor = broker.supervisor!
        // Past 40 s it says where it is, so that a hang in a full run leaves a trace in the log.
        let step = WatchProgress()
        let watchdog = Task {
            try await Task.sleep(for: .seconds(40))
            print("reconnect test still waiting after 40 s: \(step.text); module: \(supervisor.statuses)")
        }
        defer { watchdog.cancel() }
        try await broker.withModule("watcher") { watcher in
            step.set("watching the start")
            // The module reconnects only once the broker has seen its first connection close: a new
            // connection that says hello before the old one's close is handled keeps the module connected
            // throughout, and nothing is unloaded (the registry counts connections).
            let seen = try await watcher.watch(
                replayed: 0, until: { $0.count == 3 },
                while: {
                    async let started: Void = supervisor.startAll()
                    _ = try await ModuleFixture.written(broker.directory, module: "bouncy", file: "closed")
                    try await waitUntil { !broker.broker.modules.isConnected("bouncy") }
                    try "go\n".write(
                        toFile: broker.directory + "/module-data/bouncy/reconnect", atomically: true, encoding: .utf8)
                    await started
                })
            step.set("waiting for the module to be running")
            // Its first connection closed (unloaded, owed before anything of the new one), then it loaded
            // again — never two loads in a row, never an unload while it is connected.
            #expect(
                seen.map(\.summary) == [
                    "module.loaded bouncy", "module.unloaded bouncy disconnected", "module.loaded bouncy",
                ])
            try await waitUntil { supervisor.statuses.first?.state == .running }
            // The grace after the first close ends with nothing more to say. (An event that must not come can
            // only be looked for after the time it would have come in: the grace, then a marker behind it.)
            step.set("waiting out the grace")
            try await waitUntil { supervisor.gracesEnded.load(ordering: .acquiring) >= 1 }
            step.set("waiting for the marker")
            try await watcher.send(#"{"op":"publish","event":{"event_type":"module.marker"}}"#)
            var late: [String] = []
            while let frame = try await watcher.receive(), !frame.contains(#""event_type":"module.marker""#) {
                if frame.contains("bouncy") { late.append(frame) }
            }
            #expect(late.isEmpty)
            #expect(supervisor.statuses.first?.state == .running)
        }
        step.set("loading over HTTP")
        let load = try await broker.http().post("/v1/modules/bouncy/load")
        #expect(load.status == 200)
        #expect(load.text.contains(#""state":"running""#))
        try await broker.stop()
    }

    @Test func controlRequestsOnOneModuleRunOneAfterTheOtherAndEachAnswersWithAFinalState() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("polite")
        let broker = try await TestBroker.start(http: true, modules: modules.directory) { quickStop(&$0) }
        await broker.supervisor!.startAll()
        let http = broker.http()
        for (first, second) in [("reload", "reload"), ("unload", "reload"), ("reload", "unload"), ("unload", "load")] {
            async let a = http.post("/v1/modules/polite/\(first)")
            async let b = http.post("/v1/modules/polite/\(second)")
            let answers = try await [a, b]
            for (action, answer) in zip([first, second], answers) {
                #expect(answer.status == 200, "\(first)+\(second): \(action)")
                let state = answer.json?["state"] as? String
                // An unload stops a start still waiting for the module to load (as `systemctl stop` cancels
                // a start job): a reload or load it overtook that way answers `stopped`.
                let expected: Set<String> =
                    action == "unload"
                    ? ["stopped"] : [first, second].contains("unload") ? ["running", "stopped"] : ["running"]
                #expect(expected.contains(state ?? "-"), "\(first)+\(second): \(action) \(state ?? "-")")
            }
            _ = try await http.post("/v1/modules/polite/load")
        }
        try await broker.stop()
    }

    @Test func unloadingAModuleClosesEveryConnectionUsingItsName() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("polite")
        let broker = try await TestBroker.start(http: true, modules: modules.directory) { quickStop(&$0) }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        try await waitUntil { supervisor.statuses.first?.state == .running }
        // A second connection under the module's name (a helper of it, say) that outlives its process.
        try await broker.withModule("polite") { (helper: inout Conversation) async throws in
            let unload = try await broker.http().post("/v1/modules/polite/unload")
            #expect(unload.status == 200)
            #expect(unload.text.contains(#""state":"stopped""#))
            #expect(unload.text.contains(#""connections":0"#))
            var frame = try await helper.receive()
            while frame == #"{"op":"ping"}"# { frame = try await helper.receive() }
            #expect(frame == nil)
        }
        // And reload starts it again.
        let reload = try await broker.http().post("/v1/modules/polite/reload")
        #expect(reload.status == 200)
        #expect(reload.text.contains(#""state":"running""#))
        try await broker.stop()
    }

    /// §3: a module is loaded when a connection of it completes its first `subscribe`. A process the broker
    /// starts while another connection of its name holds the module loaded is loaded too once it subscribes,
    /// not killed at the startup timeout as if it never had. It is told from the other connection by the token
    /// it presents, or, presenting none (`--no-token`), by its process group.
    @Test(arguments: [[], ["--no-token"]])
    func aModuleStartedWhileAnotherConnectionOfItsNameIsLoadedRuns(arguments: [String]) async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("polite", arguments: arguments)
        let broker = try await TestBroker.start(http: true, modules: modules.directory) {
            quickStop(&$0)
            $0.modules.startupTimeoutMs = 5_000
        }
        let supervisor = broker.supervisor!
        try await broker.withModule("polite") { (helper: inout Conversation) async throws in
            #expect(
                try await helper.request(#"{"op":"subscribe","id":1,"topics":["nothing.here"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            #expect(broker.broker.modules.isLoaded("polite"))
            let load = try await broker.http().post("/v1/modules/polite/load")
            #expect(load.status == 200)
            #expect(load.text.contains(#""state":"running""#), "\(load.text)")
            #expect(supervisor.statuses.first?.restarts == 0)
        }
        try await broker.stop()
    }

    /// While the broker waits for a module it started to load, another client that says hello under the
    /// module's name and subscribes loads the name (§3), but it is not the started process: the start is not
    /// settled by it, and times out as the process never loads.
    @Test func anotherClientUnderAStartingModulesNameDoesNotSettleItsStart() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("shy", arguments: ["--no-load"], extra: "[restart]\npolicy = \"never\"")
        let broker = try await TestBroker.start(modules: modules.directory) {
            quickStop(&$0)
            // Long enough for the Python module to start and say hello on a machine running the whole suite.
            $0.modules.startupTimeoutMs = 5_000
        }
        let supervisor = broker.supervisor!
        let load = Task { try await supervisor.load("shy") }
        // The process said hello (connected, not loaded) — or, on a machine too slow for the timeout, its
        // start ended first, which fails here rather than waiting out the suite's time limit.
        try await waitUntil {
            broker.broker.modules.isConnected("shy")
                || supervisor.statuses.first { $0.name == "shy" }?.state == .failed
        }
        try #require(broker.broker.modules.isConnected("shy"), "the module did not say hello within its start")
        try await broker.withModule("shy") { (impostor: inout Conversation) async throws in
            #expect(
                try await impostor.request(#"{"op":"subscribe","id":1,"topics":["nothing.here"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            #expect(broker.broker.modules.isLoaded("shy"))
            let status = try await load.value
            // Answered at the timeout, as the process is killed (before the fix: `running` at once).
            #expect(status.state != .running)
            #expect(status.problem?.contains("not loaded within modules.startup_timeout_ms") == true)
        }
        try await broker.stop()
    }

    /// An unload does not wait behind a load whose module never loads (up to `startup_timeout_ms`, two
    /// minutes here, past the suite's time limit): the start is stopped, and both answer stopped.
    @Test func unloadingAModuleWhoseStartHangsStopsItAtOnce() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("hanging", arguments: ["--no-load"])
        let broker = try await TestBroker.start(modules: modules.directory) {
            quickStop(&$0)
            $0.modules.startupTimeoutMs = 120_000
        }
        let supervisor = broker.supervisor!
        let load = Task { try await supervisor.load("hanging") }
        // Once it said hello (connected, not loaded): the load then saw `stopping` on the way and answered it.
        try await waitUntil { broker.broker.modules.isConnected("hanging") }
        let unloaded = try await supervisor.unload("hanging")
        #expect(unloaded.state == .stopped)
        #expect(try await load.value.state == .stopped)
        try await broker.stop()
    }

    @Test func theCLIExitsNonZeroWhenALoadDoesNotEndLoaded() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("shy", arguments: ["--no-load"], extra: "[restart]\npolicy = \"never\"")
        try modules.add("polite")
        let broker = try await TestBroker.start(http: true, modules: modules.directory) {
            quickStop(&$0)
            // Long enough for a Python module to start on a busy machine (tests run in parallel).
            $0.modules.startupTimeoutMs = 5000
        }
        let address = broker.gateway!.address
        let shy = try HeraldRun.start(["modules", "load", "shy", "--http", address])
        let (failed, output, errors) = await shy.finishWithOutput()
        #expect(failed != 0)
        #expect(output.isEmpty)
        // Answered at the timeout, as it is being killed.
        #expect(errors.hasPrefix("herald: load: shy is "))
        #expect(errors.contains("not loaded within modules.startup_timeout_ms (5000 ms)"))
        #expect(errors.split(separator: "\n").count == 1)
        let polite = try HeraldRun.start(["modules", "load", "polite", "--http", address])
        let (loaded, line, why) = await polite.finishWithOutput()
        #expect(loaded == 0, "\(why)")
        #expect(line == "load: polite is running\n")
        let unload = try HeraldRun.start(["modules", "unload", "polite", "--http", address, "--json"])
        let (stopped, json, _) = await unload.finishWithOutput()
        #expect(stopped == 0)
        #expect(json.contains(#""state":"stopped""#))
        try await broker.stop()
    }

    @Test func aModuleThatNeverLoadsCrashesAtTheStartupTimeoutAndIsRestarted() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("shy", arguments: ["--no-load"], extra: "[restart]\nbackoff_ms = 10\nmax_restarts = 1")
        let broker = try await TestBroker.start(modules: modules.directory) {
            quickStop(&$0)
            $0.modules.startupTimeoutMs = 300
        }
        let supervisor = broker.supervisor!
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 2 }, while: { await supervisor.startAll() })
        }
        // Never loaded, so no `module.unloaded` (PROTOCOL.md §3); one restart, then it stays down.
        #expect(seen.map(\.summary) == ["module.crashed shy", "module.crashed shy"])
        #expect(
            (seen[0].payload["error"] as? String)?.hasPrefix(
                "not loaded within modules.startup_timeout_ms (300 ms); killed by signal 15 (SIGTERM)") == true)
        try await waitUntil { supervisor.statuses.first?.state == .failed }
        let status = try #require(supervisor.statuses.first)
        #expect(status.restarts == 1)
        #expect(status.problem?.contains("restart.max_restarts") == true)
        try await broker.stop()
    }

    @Test func aModuleWhoseDependencyLoadsOnlyAfterARestartStartsThen() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("base", arguments: ["--fail-first"], extra: "[restart]\nbackoff_ms = 10")
        try modules.add("upper", extra: #"depends_on = ["base"]"#)
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(until: { $0.count == 3 }, while: { await supervisor.startAll() })
        }
        // `base` crashed before loading (no `module.unloaded`), loaded after its restart, and `upper`, which
        // waits for it, started then.
        #expect(seen.map(\.summary) == ["module.crashed base", "module.loaded base", "module.loaded upper"])
        try await waitUntil { supervisor.statuses.allSatisfy { $0.state == .running } }
        #expect(supervisor.statuses.map(\.name) == ["base", "upper"])
        try await broker.stop()
    }

    /// A module the broker stopped, or whose run crashed, is no longer the run's once its connections are
    /// gone: a client that later says hello under its name and leaves gets `disconnected` or `bye` (§3), not
    /// the ended run's `stopped`.
    @Test func aClientUsingAStoppedModulesNameLeavesWithItsOwnReason() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("base")
        let broker = try await TestBroker.start(modules: modules.directory) { quickStop(&$0) }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        #expect(try await supervisor.unload("base").state == .stopped)
        let seen = try await broker.withModule("watcher") { watcher in
            try await watcher.watch(
                until: { $0.count == 4 },
                while: {
                    for farewell in [false, true] {
                        try await broker.withModule("base") { (client: inout Conversation) async throws in
                            _ = try await client.request(#"{"op":"subscribe","id":1,"topics":["nothing"]}"#)
                            if farewell { try await client.send(#"{"op":"bye"}"#) }
                        }
                        // The broker has seen the close before the next client comes: two connections at
                        // once would be one module (§3), loaded once and unloaded once.
                        try await waitUntil { !broker.broker.modules.isConnected("base") }
                    }
                })
        }
        #expect(
            seen.map(\.summary) == [
                "module.loaded base", "module.unloaded base disconnected", "module.loaded base",
                "module.unloaded base bye",
            ])
        try await broker.stop()
    }

    /// A folder whose manifest was refused at start, fixed since: an unload (which looks again) lists it
    /// stopped, where it answered 404 and vanished from the list.
    @Test func aManifestRefusedAtStartAndFixedIsStoppedByAnUnload() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("bad", extra: "bogus = 1")
        let broker = try await TestBroker.start(modules: modules.directory) { quickStop(&$0) }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        #expect(supervisor.statuses.first?.state == .failed)
        try modules.writeManifest("bad", "name = \"bad\"\nversion = \"1.0.0\"\nentry_point = \"module.py\"\n")
        let unloaded = try await supervisor.unload("bad")
        #expect(unloaded.state == .stopped && unloaded.problem == nil)
        #expect(supervisor.statuses.map(\.name) == ["bad"])
        #expect(try await supervisor.load("bad").state == .running)
        try await broker.stop()
    }

    /// An operator's `load` or `reload` honours `depends_on` as the start does: refused, saying which, while
    /// a dependency is not loaded; allowed once it is.
    @Test func loadingAModuleWhoseDependencyIsNotLoadedIsRefusedSayingWhich() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("base")
        try modules.add("upper", extra: #"depends_on = ["base"]"#)
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        _ = try await supervisor.unload("upper")
        _ = try await supervisor.unload("base")
        for request in ["load", "reload"] {
            do {
                _ = try await (request == "load" ? supervisor.load("upper") : supervisor.reload("upper"))
                Issue.record("\(request) started a module whose dependency is stopped")
            } catch {
                #expect(!error.notFound)
                #expect(error.description == "module: 'upper' depends on 'base', not loaded: load it first")
            }
        }
        #expect(supervisor.statuses.map(\.state) == [.stopped, .stopped])
        #expect(try await supervisor.load("base").state == .running)
        #expect(try await supervisor.load("upper").state == .running)
        try await broker.stop()
    }

    /// A `reload` whose manifest now closes a dependency cycle with running modules is refused, naming the
    /// cycle, as the start refuses one; the module keeps running with the manifest it had.
    @Test func aReloadThatWouldCloseADependencyCycleIsRefused() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("base")
        try modules.add("upper", extra: #"depends_on = ["base"]"#)
        let broker = try await TestBroker.start(modules: modules.directory, quickStop)
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        #expect(supervisor.statuses.map(\.state) == [.running, .running])
        try modules.add("base", extra: #"depends_on = ["upper"]"#)
        for request in ["reload", "load"] {
            do {
                _ = try await (request == "load" ? supervisor.load("base") : supervisor.reload("base"))
                Issue.record("\(request) accepted a dependency cycle")
            } catch {
                #expect(!error.notFound)
                #expect(
                    error.description.hasSuffix(
                        "/base/module.toml: depends_on: dependency cycle: base -> upper -> base"))
            }
        }
        #expect(supervisor.statuses.map(\.state) == [.running, .running])
        try await broker.stop()
    }

    @Test func aModuleThatStopsAnsweringPingsIsKilledAndRestarted() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("deaf", arguments: ["--no-pong"], extra: "[restart]\nbackoff_ms = 10\nmax_restarts = 1")
        let broker = try await TestBroker.start(durable: true, modules: modules.directory) {
            quickStop(&$0)
            // A second: the module must say hello and subscribe within three heartbeats of silence, and the
            // whole suite on two cores can hold a Python process up for more than 600 ms.
            $0.ipc.heartbeatMs = 1000
        }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        // Read back from the log (as missedHeartbeatsTurnAModuleDegradedThenUnhealthy does, for the same
        // reason): two runs, each loaded, unhealthy, killed.
        let seen = try await storedModuleEvents(broker, count: 10)
        #expect(
            seen.map(\.summary)
                == Array(
                    repeating: [
                        "module.loaded deaf", "module.health_changed deaf", "module.health_changed deaf",
                        "module.crashed deaf", "module.unloaded deaf crashed",
                    ], count: 2
                ).flatMap { $0 })
        #expect(
            seen[3].payload["error"] as? String
                == "unresponsive: no reply to the broker's pings for 3000 ms; killed by signal 15 (SIGTERM)")
        try await waitUntil { supervisor.statuses.first?.state == .failed }
        let status = try #require(supervisor.statuses.first)
        #expect(status.restarts == 1)
        #expect(status.pid == nil)
        try await broker.stop()
    }

    /// The first `count` events of `module.#` stored in `broker`'s log, once there are that many.
    private func storedModuleEvents(_ broker: TestBroker, count: Int) async throws -> [SeenEvent] {
        let pattern = try TopicPattern("module.#")
        var seen: [SeenEvent] = []
        while seen.count < count {
            try await Task.sleep(for: .milliseconds(20))
            seen = try broker.broker.replay(pattern, from: .earliest, partition: nil, limit: 100).events.map { bytes in
                let event = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
                return SeenEvent(
                    type: event["event_type"] as? String ?? "", payload: event["payload"] as? [String: Any] ?? [:])
            }
        }
        return Array(seen.prefix(count))
    }

    @Test func missedHeartbeatsTurnAModuleDegradedThenUnhealthy() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("deaf", arguments: ["--no-pong"], extra: "[restart]\npolicy = \"never\"")
        // Read back from the log rather than watched live: a watcher would have to answer pings in time
        // on a machine loaded by the whole suite.
        let broker = try await TestBroker.start(durable: true, modules: modules.directory) {
            quickStop(&$0)
            // A second: the module must say hello and subscribe within three heartbeats of silence, and the
            // whole suite on two cores can hold a Python process up for more than 600 ms.
            $0.ipc.heartbeatMs = 1000
        }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        // Not its state now: on a loaded machine the heartbeats may already have closed it (the events below
        // say it was loaded first).
        let seen = try await storedModuleEvents(broker, count: 5)
        // Closed for its silence while its process runs: hung, so killed as failed (and, under policy
        // never, not restarted).
        #expect(
            seen.map(\.summary) == [
                "module.loaded deaf", "module.health_changed deaf", "module.health_changed deaf",
                "module.crashed deaf", "module.unloaded deaf crashed",
            ])
        #expect(seen[1].payload["old_health"] as? String == "healthy")
        #expect(seen[1].payload["new_health"] as? String == "degraded")
        #expect(seen[2].payload["old_health"] as? String == "degraded")
        #expect(seen[2].payload["new_health"] as? String == "unhealthy")
        try await waitUntil { supervisor.statuses.first?.state == .failed }
        #expect(supervisor.statuses.first?.problem?.hasPrefix("unresponsive: ") == true)
        try await broker.stop()
    }

    @Test func modulesAreLoadedUnloadedAndReloadedOverHTTP() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("polite")
        try modules.add("stubborn", arguments: ["--ignore-term"])
        let broker = try await TestBroker.start(http: true, modules: modules.directory) {
            $0.modules.shutdownTimeoutMs = 300
            $0.tokens = [
                .init(name: "ops", secret: "ops-secret", publish: [], subscribe: [try! TopicPattern("#")], admin: true),
                .init(name: "watcher", secret: "watcher-secret", publish: [], subscribe: [try! TopicPattern("#")]),
                .init(name: "ui", secret: "ui-secret", publish: [], subscribe: [try! TopicPattern("#")]),
            ]
        }
        let supervisor = broker.supervisor!
        await supervisor.startAll()
        let http = broker.http(token: "ops-secret")
        #expect(try await broker.http(token: "ui-secret").post("/v1/modules/polite/unload").status == 403)
        let listed = try await http.get("/v1/modules")
        #expect(listed.status == 200)
        let rows = try #require(listed.json?["modules"] as? [[String: Any]])
        #expect(rows.map { $0["name"] as? String } == ["polite", "stubborn"])
        #expect(rows.map { $0["state"] as? String } == ["running", "running"])
        #expect(
            rows.allSatisfy { $0["pid"] is Int && $0["health"] as? String == "healthy" && $0["loaded_at"] is String })

        try await broker.withModule("watcher", token: "watcher-secret") { watcher in
            let unloads = try await watcher.watch(
                replayed: 2, until: { $0.count == 2 },
                while: {
                    let polite = try await http.post("/v1/modules/polite/unload")
                    #expect(polite.status == 200)
                    #expect(polite.text.contains(#""state":"stopped""#))
                    let started = ContinuousClock.now
                    let stubborn = try await http.post("/v1/modules/stubborn/unload")
                    #expect(stubborn.status == 200)
                    // It ignored SIGTERM: SIGKILL after shutdown_timeout_ms.
                    #expect(ContinuousClock.now - started >= .milliseconds(300))
                })
            #expect(unloads.map(\.summary) == ["module.unloaded polite stopped", "module.unloaded stubborn stopped"])
        }
        let loaded = try await http.post("/v1/modules/polite/load")
        #expect(loaded.status == 200)
        #expect(loaded.text.contains(#""state":"running""#))

        try modules.writeManifest("polite", "name = \"polite\"\nversion = \"1.1.0\"\nentry_point = \"module.py\"\n")
        try await broker.withModule("watcher", token: "watcher-secret") { watcher in
            let reload = try await watcher.watch(
                replayed: 1, until: { $0.count == 3 },
                while: {
                    let reloaded = try await http.post("/v1/modules/polite/reload")
                    #expect(reloaded.status == 200)
                })
            #expect(
                reload.map(\.summary) == [
                    "module.unloaded polite stopped", "module.loaded polite", "module.reloaded polite",
                ])
            // The versions agree across the reload's events (the module says its manifest's in `hello`).
            #expect(reload[0].payload["version"] as? String == "1.0.0")
            #expect(reload[1].payload["version"] as? String == "1.1.0")
            #expect(reload[2].payload["old_version"] as? String == "1.0.0")
            #expect(reload[2].payload["new_version"] as? String == "1.1.0")
        }
        // A reload whose new manifest is refused says why and leaves the running module running.
        let pid = try #require(
            (try await http.get("/v1/modules").json?["modules"] as? [[String: Any]])?.first?["pid"] as? Int)
        try modules.writeManifest(
            "polite", "name = \"polite\"\nversion = \"1.2.0\"\nentry_point = \"module.py\"\nbogus = 1\n")
        let refused = try await http.post("/v1/modules/polite/reload")
        #expect(refused.status == 400)
        #expect(refused.text.contains("bogus"))
        let after = try #require((try await http.get("/v1/modules").json?["modules"] as? [[String: Any]])?.first)
        #expect(after["state"] as? String == "running")
        #expect(after["pid"] as? Int == pid)
        #expect(after["version"] as? String == "1.1.0")
        // Stopped, it cannot start on that manifest: listed failed, with the reason.
        #expect(try await http.post("/v1/modules/polite/unload").status == 200)
        #expect(try await http.post("/v1/modules/polite/load").status == 400)
        let refusedRow = try #require(
            (try await http.get("/v1/modules").json?["modules"] as? [[String: Any]])?.first)
        #expect(refusedRow["state"] as? String == "failed")
        #expect((refusedRow["problem"] as? String)?.hasPrefix("manifest refused:") == true)
        // Fixed since, the refusal is gone once the broker looks again (an unload does): stopped, not failed.
        try modules.writeManifest("polite", "name = \"polite\"\nversion = \"1.2.0\"\nentry_point = \"module.py\"\n")
        let unloadedAgain = try await http.post("/v1/modules/polite/unload")
        #expect(unloadedAgain.json?["state"] as? String == "stopped")
        #expect(unloadedAgain.json?["problem"] is NSNull)
        let missing = try await http.post("/v1/modules/absent/load")
        #expect(missing.status == 404)
        try modules.add("broken", version: "one")
        let broken = try await http.post("/v1/modules/broken/load")
        #expect(broken.status == 400)
        #expect(broken.text.contains("version: 'one' is not a semantic version"))
        // The refused folder is listed, failed, with the reason.
        let row = try #require(
            (try await http.get("/v1/modules").json?["modules"] as? [[String: Any]])?.first {
                $0["name"] as? String == "broken"
            })
        #expect(row["state"] as? String == "failed")
        #expect((row["problem"] as? String)?.contains("manifest refused:") == true)
        #expect((row["problem"] as? String)?.contains("version: 'one' is not a semantic version") == true)
        try await broker.stop()
    }

    @Test func aModuleThatConnectsOnItsOwnIsListedAsExternal() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        let broker = try await TestBroker.start(http: true, modules: modules.directory, quickStop)
        try await broker.withModule("walk-in") { client in
            _ = try await client.request(#"{"op":"ready","id":1}"#)
            let body = try await broker.http().get("/v1/modules").json
            let rows = try #require(body?["modules"] as? [[String: Any]])
            #expect(rows.map { $0["name"] as? String } == ["walk-in"])
            #expect(rows.first?["state"] as? String == "external")
            #expect(rows.first?["pid"] is NSNull)
        }
        try await broker.stop()
    }
}
