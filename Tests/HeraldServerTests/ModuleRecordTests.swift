import Foundation
import HeraldCore
import Logging
import Testing

@testable import HeraldServer

/// A started module's record, without processes: the order of its lifecycle events (EVENTS.md).
@Suite(.timeLimit(.minutes(3))) struct ModuleRecordTests {
    /// Module `name` added to `modules`, its record at the beginning of run 1 (token `t-1`), and a process
    /// for that run, not recorded yet: `/bin/sleep 30`, leading its own process group as a started module's
    /// process does. The caller kills it.
    private static func beginRun(_ name: String, in modules: ModuleFixture) async throws -> (
        record: ModuleRecord, process: ModuleProcess
    ) {
        try modules.add(name)
        let manifest = try ModuleManifest.load(folder: modules.directory + "/" + name)
        var record = ModuleRecord(manifest: manifest)
        record.begin(token: "t-1")
        let process = try await ModuleProcess.start(
            .init(
                module: name, executable: "/bin/sleep", arguments: ["30"], environment: [:],
                directory: modules.directory, limits: manifest.limits),
            logger: Logger(label: "test")
        ) { _, _ in }
        return (record, process)
    }

    /// A start is settled by its own run's connections only: the one that presents the run's token, or
    /// (presenting none) whose process is in the run's process group. Another client under the module's name
    /// loads the name, not the run.
    @Test func onlyTheRunsOwnConnectionsSettleItsStart() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("victim")
        var record = ModuleRecord(manifest: try ModuleManifest.load(folder: modules.directory + "/victim"))
        record.begin(token: "t-1")
        let otherToken = record.loaded(from: ConnectionOrigin(issuedToken: "t-0"))
        #expect(!otherToken)
        let noOrigin = record.loaded(from: ConnectionOrigin())
        #expect(!noOrigin)
        let ownToken = record.loaded(from: ConnectionOrigin(issuedToken: "t-1"))
        #expect(ownToken)
        // This test's process leads no group of a run: its own group is the one it is in.
        let me = getpid()
        #expect(ConnectionOrigin(peerProcess: me).isRun(token: nil, leader: getpgid(0)))
        #expect(!ConnectionOrigin(peerProcess: me).isRun(token: nil, leader: getpgid(0) + 1))
        // A token decides over the process group: an issued token of another run is another run.
        #expect(!ConnectionOrigin(issuedToken: "t-0", peerProcess: me).isRun(token: "t-1", leader: getpgid(0)))
    }

    @Test func anUnloadAfterARecordedCrashWaitsUntilTheCrashIsPublished() throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("victim")
        var record = ModuleRecord(manifest: try ModuleManifest.load(folder: modules.directory + "/victim"))
        record.begin(token: "t-1")
        let loaded = record.loaded(from: ConnectionOrigin(issuedToken: "t-1"))
        #expect(loaded)
        // The exit is recorded; the supervisor has not published `module.crashed` yet when the connection closes.
        let outcome = record.exited(.signaled(SIGKILL), shuttingDown: false, now: .now)
        #expect(outcome.crashed)
        let (handled, now, grace) = record.disconnected(
            ModuleRegistry.LoadedModule(name: "victim", version: "1.0.0"), saidBye: false)
        #expect(handled)
        #expect(now == nil)
        #expect(grace == nil)
        // Once `module.crashed` is out, the `module.unloaded` follows, once.
        let announced = record.crashAnnounced()
        let unloaded = try #require(announced)
        #expect([unloaded.moduleName, unloaded.version] == ["victim", "1.0.0"])
        #expect(unloaded.reason == .crashed)
        let again = record.crashAnnounced()
        #expect(again == nil)
    }

    /// The exit is handled and the restart begins before the event loop notices the killed run's connection
    /// closed: that close is still the killed run's `module.unloaded`, `crashed`, not a `disconnected` of
    /// nobody's.
    @Test(arguments: [(ModuleExit.signaled(SIGKILL), UnloadReason.crashed), (.exited(0), .disconnected)])
    func theLastConnectionOfARunThatEndedClosingAfterTheRestartIsThatRunsUnload(
        exit: ModuleExit, reason: UnloadReason
    ) throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("victim", extra: "[restart]\npolicy = \"always\"")
        var record = ModuleRecord(manifest: try ModuleManifest.load(folder: modules.directory + "/victim"))
        record.begin(token: "t-1")
        let loaded = record.loaded(from: ConnectionOrigin(issuedToken: "t-1"))
        #expect(loaded)
        let outcome = record.exited(exit, shuttingDown: false, now: .now)
        #expect(outcome.restartAfter != nil)
        _ = record.crashAnnounced()
        record.begin(token: "t-2")
        let (handled, unloaded, grace) = record.disconnected(
            ModuleRegistry.LoadedModule(name: "victim", version: "1.0.0"), saidBye: false)
        #expect(handled)
        #expect(unloaded?.reason == reason)
        #expect(grace == nil)
        // Once: a later connection of the new run, before it loads, is not that run's.
        let (again, _, _) = record.disconnected(
            ModuleRegistry.LoadedModule(name: "victim", version: "1.0.0"), saidBye: false)
        #expect(!again)
    }

    @Test func aRunKilledAsFailedCrashesAndRestartsEvenWhenItExitsCleanly() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        let run = try await Self.beginRun("hung", in: modules)
        var record = run.record
        let process = run.process
        defer { process.signal(SIGKILL) }
        // The process is not recorded yet: nothing to kill.
        #expect(record.kill(for: "unresponsive") == nil)
        let killNow = record.started(process, run: 1).kill
        #expect(!killNow)
        #expect(record.kill(for: "unresponsive: test") === process)
        // Killed once: a second failure finds it already being killed.
        #expect(record.kill(for: "again") == nil)
        #expect(!record.hasEnded(run: 1))
        // It handled SIGTERM and exited 0, but it was killed for a failure: `module.crashed` says why, and
        // restart policy `on-failure` (the default) restarts it.
        let outcome = record.exited(.exited(0), shuttingDown: false, now: .now)
        #expect(outcome.crashed)
        #expect(outcome.cause == "unresponsive: test; exit status 0")
        #expect(outcome.restartAfter != nil)
        #expect(record.state == .restarting)
        #expect(record.hasEnded(run: 1))
        record.begin(token: "t-2")
        #expect(!record.hasEnded(run: 2))
        #expect(record.hasEnded(run: 1))
        // A kill asked for before the run's process is recorded (it connected, loaded and went silent first)
        // is carried out when it is.
        let asked = record.requestKill(for: "unresponsive: early")
        let askedAgain = record.requestKill(for: "again")
        let killWhenStarted = record.started(process, run: 2).kill
        #expect(asked && !askedAgain && killWhenStarted)
    }

    /// A run's process that connects and subscribes, presenting no token, before the task that spawned it
    /// records it: it is known by its process group once it is recorded, and that settles the start.
    @Test func aRunThatLoadedBeforeItsProcessWasRecordedIsLoadedWhenItIs() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        let run = try await Self.beginRun("early", in: modules)
        var record = run.record
        let process = run.process
        defer { process.signal(SIGKILL) }
        // Another client (this test's process, in another group) and then the run's own process load it.
        let byOther = record.loaded(from: ConnectionOrigin(peerProcess: getpid()))
        let byRunEarly = record.loaded(from: ConnectionOrigin(peerProcess: process.pid))
        #expect(!byOther && !byRunEarly)
        #expect(record.state == .starting)
        let started = record.started(process, run: 1)
        #expect(!started.kill)
        #expect(started.loaded)
        #expect(record.state == .running)
        #expect(record.hasLoadedThisRun)
    }

    /// An unload that came while the run's process was being spawned (its module may already have said
    /// hello): ``ModuleRecord/stop()`` finds no process to stop, and the process, once recorded, is to be
    /// killed as stopped — not left running while the start waits for a load that will never come.
    @Test func aStopAskedForBeforeTheProcessWasRecordedStopsItOnceItIs() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        let run = try await Self.beginRun("spawning", in: modules)
        var record = run.record
        let process = run.process
        defer { process.signal(SIGKILL) }
        #expect(record.stop() == nil)
        #expect(record.state == .starting)
        let started = record.started(process, run: 1)
        #expect(started.kill)
        #expect(!started.loaded)
        #expect(record.state == .stopping)
        #expect(record.process != nil)
    }

    /// The same, but that connection closed before the process was recorded: it holds nothing loaded any
    /// more, so the recorded process has not loaded (its start goes on waiting).
    @Test func anEarlyLoadWhoseConnectionClosedDoesNotSettleTheStart() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        let run = try await Self.beginRun("early", in: modules)
        var record = run.record
        let process = run.process
        defer { process.signal(SIGKILL) }
        let early = record.loaded(from: ConnectionOrigin(peerProcess: process.pid))
        #expect(!early)
        _ = record.disconnected(ModuleRegistry.LoadedModule(name: "early", version: "1.0.0"), saidBye: false)
        let started = record.started(process, run: 1)
        #expect(!started.loaded)
        #expect(record.state == .starting)
    }
    @Test func aProcessIsSeenAsExitedOnceItExitsAndNotBefore() async throws {
        let modules = try ModuleFixture()
        defer { modules.remove() }
        try modules.add("brief")
        let manifest = try ModuleManifest.load(folder: modules.directory + "/brief")
        func launch(_ arguments: [String]) -> ModuleProcess.Launch {
            .init(
                module: "brief", executable: "/bin/sh", arguments: arguments, environment: [:],
                directory: modules.directory, limits: manifest.limits)
        }
        let running = try await ModuleProcess.start(launch(["-c", "sleep 30"]), logger: Logger(label: "test")) { _, _ in
        }
        defer { running.signal(SIGKILL) }
        #expect(!running.hasExited)
        let brief = try await ModuleProcess.start(launch(["-c", "exit 3"]), logger: Logger(label: "test")) { _, _ in }
        try await waitUntil { brief.hasExited }
        // Killing a running one: seen as exited once it is, whether or not its exit was reaped and reported.
        running.signal(SIGKILL)
        try await waitUntil { running.hasExited }
    }

    @Test func theStderrTailOfACrashIsCutToItsBudgetKeepingTheEnd() {
        #expect(ModuleSupervisor.tail("short", maximumBytes: 100) == "short")
        let lines = (0..<20).map { "line \($0) " + String(repeating: "é", count: 1500) }.joined(separator: "\n")
        let tail = ModuleSupervisor.tail(lines, maximumBytes: 341)
        #expect(tail.utf8.count <= 341)
        #expect(tail.hasPrefix("…"))
        #expect(lines.hasSuffix(tail.dropFirst()))
    }
}
