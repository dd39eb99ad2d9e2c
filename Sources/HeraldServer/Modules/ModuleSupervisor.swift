import Foundation
import HeraldCore
import Logging
import ServiceLifecycle
import Synchronization

/// Starts the modules of the modules directory, watches and restarts them, and stops them (PROTOCOL.md §3,
/// EVENTS.md, `docs/modules.md`).
///
/// Each module is a ``ModuleRecord``: a small state machine under one lock. Its transitions return what to
/// do (events to publish, waiters to wake, a restart to schedule), and that is done outside the lock. The
/// process side lives in ``ModuleProcess``; the connection side reaches the supervisor through the broker
/// when a module is loaded and when its last connection closes, so that `module.unloaded` carries the
/// right reason: `stopped` when the broker stopped it, `crashed` after `module.crashed` when its process
/// failed, `bye` or `disconnected` otherwise.
public final class ModuleSupervisor: Service, Sendable {
    private let broker: Broker
    private let directory: String
    private let state = StateLock(State())
    private let numbers = Atomic<UInt64>(0)

    /// How long the broker waits, after the last connection of a module it started closed, for the process
    /// to exit: an exit within it makes a crash the reason of `module.unloaded`.
    static let exitGrace = Duration.seconds(1)
    /// Graces after a last connection closed that have run out (``graceEnded(_:run:)``): what a test awaits
    /// to know that one has, instead of sleeping for it.
    let gracesEnded = Atomic<Int>(0)

    private struct State {
        var records: [String: ModuleRecord] = [:]
        /// Manifests that were refused, by module name, for `load` to explain.
        var refused: [String: ManifestError] = [:]
        var waiters: [UInt64: Waiter] = [:]
        var shuttingDown = false
    }

    private struct Waiter {
        let module: String
        let condition: Condition
        let continuation: CheckedContinuation<Void, Never>
    }

    /// What a waiter waits for.
    private enum Condition {
        /// Loaded, failed, or timed out.
        case settled
        /// No process and no connection.
        case gone
        /// The run's process exited (or a later run began).
        case ended(run: Int)
    }

    /// A supervisor for the modules in `broker`'s `[modules] dir`.
    public init(broker: Broker) {
        self.broker = broker
        self.directory = broker.configuration.modules.directory
        broker.supervisor = self
    }

    // MARK: Service

    /// Runs until the broker shuts down, then stops every module (EVENTS.md's shutdown order): they get the
    /// timeout of `node.shutdown` to exit on their own, then SIGTERM, then SIGKILL.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { first in
            first.addTask { try? await gracefulShutdown() }
            first.addTask { [broker] in await broker.shutdownBegun() }
            await first.next()
            first.cancelAll()
        }
        broker.beginShutdown()
        await stopAll()
        broker.supervisor = nil
    }

    // MARK: Starting

    /// Reads the modules directory and starts every valid module, each once its dependencies are loaded;
    /// returns when every module is loaded, failed, or timed out (EVENTS.md: then `node.startup_completed`).
    /// Refused manifests are logged and skipped.
    public func startAll() async {
        let modules = ModuleDirectory(path: directory)
        let place: Logger.Metadata = ["modules.dir": "\(directory)"]
        switch modules.problem {
        case .missing: broker.logger.info("the modules directory does not exist: no modules", metadata: place)
        case .notADirectory:
            broker.logger.error("the modules directory is not a directory: no modules", metadata: place)
        case nil:
            let names = modules.manifests.map(\.name)
            broker.logger.info("modules found", metadata: place.merging(["modules": "\(names)"]) { $1 })
        }
        for folder in modules.ignoredFolders {
            broker.logger.warning(
                "a folder of the modules directory has no \(ModuleManifest.fileName): not a module",
                metadata: place.merging(["folder": "\(folder)"]) { $1 })
        }
        for error in modules.errors {
            broker.logger.error("module refused", metadata: ["module.manifest": "\(error)"])
        }
        state.withLock { state in
            for error in modules.errors {
                state.refused[URL(fileURLWithPath: error.file).deletingLastPathComponent().lastPathComponent] = error
            }
            for manifest in modules.manifests {
                var record = ModuleRecord(manifest: manifest)
                record.awaitingStart = true
                state.records[manifest.name] = record
            }
        }
        await withTaskGroup(of: Void.self) { starts in
            for manifest in modules.manifests {
                starts.addTask {
                    for dependency in manifest.dependencies { await self.wait(for: dependency, .settled) }
                    // Unloaded while it waited: it is not started, now or when its dependencies load.
                    guard self.state.withLock({ $0.records[manifest.name]?.awaitingStart == true }) else {
                        self.wake(manifest.name)
                        return
                    }
                    let failed = manifest.dependencies.filter { !self.isLoaded($0) }
                    guard failed.isEmpty else {
                        let problem = "not started: dependency '\(failed[0])' is not loaded"
                        // During a shutdown the dependency was stopped on purpose: nothing for an alert.
                        self.broker.logger.log(
                            level: self.broker.isShuttingDown ? .info : .error, "module not started",
                            metadata: ["module": "\(manifest.name)", "module.problem": "\(problem)"])
                        self.state.withLock { $0.records[manifest.name]?.failForDependency(problem) }
                        self.wake(manifest.name)
                        return
                    }
                    await self.start(manifest.name)
                    await self.wait(for: manifest.name, .settled)
                }
            }
        }
    }

    /// Starts `name`'s process: returns once it is running (not yet loaded), or failed to start. With
    /// `onlyIf`, only when the record still meets it, checked under the lock that starts the run.
    private func start(_ name: String, onlyIf condition: ((ModuleRecord) -> Bool)? = nil) async {
        let configuration = broker.configuration
        let secret = Self.freshToken()
        guard
            let (manifest, run) = state.withLock({ state -> (ModuleManifest, Int)? in
                guard !state.shuttingDown, var record = state.records[name], record.process == nil,
                    record.state != .starting, record.state != .running, record.state != .stopping,
                    condition?(record) ?? true
                else {
                    state.records[name]?.awaitingStart = false
                    return nil
                }
                record.begin(token: secret)
                state.records[name] = record
                return (record.manifest, record.run)
            })
        else {
            wake(name)
            return
        }
        broker.issue(
            secret,
            to: name,
            HeraldConfiguration.Token(
                name: "module:\(name)", secret: secret, publish: manifest.publish, subscribe: manifest.subscribe))
        let dataDirectory = Self.absolute(configuration.dataDirectory) + "/module-data/\(name)"
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("HERALD_") }
        environment.merge(manifest.environment) { _, new in new }
        environment["HERALD_SOCKET"] = Self.absolute(configuration.socketPath)
        environment["HERALD_MODULE_NAME"] = name
        environment["HERALD_TOKEN"] = secret
        environment["HERALD_DATA_DIR"] = dataDirectory
        let launch = ModuleProcess.Launch(
            module: name, executable: manifest.entryPoint, arguments: manifest.arguments, environment: environment,
            directory: manifest.folder, limits: manifest.limits, run: run)
        do {
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            let process = try await ModuleProcess.start(launch, logger: broker.logger) {
                [weak self] exit, lastErrorLines in
                self?.exited(name, run: run, exit, lastErrorLines: lastErrorLines)
            }
            var killNow = false
            settleStart(of: name) { record in
                let (kill, loaded) = record.started(process, run: run)
                killNow = kill
                return loaded
            }
            if killNow {
                // Killed (hung) or stopped before its process was recorded: the kill happens now.
                Task { [weak self] in await self?.terminate(name, process, run: run) }
            }
            // Spawned while a hurried shutdown killed the others (a second signal): it goes the same way.
            if broker.isShutdownHurried { process.signal(SIGKILL) }
            let timeout = Duration.milliseconds(configuration.modules.startupTimeoutMs)
            Task { [weak self] in
                try? await Task.sleep(for: timeout)
                await self?.startupTimedOut(name, run: run)
            }
        } catch {
            broker.revoke(secret)
            broker.logger.error("module could not start", metadata: ["module": "\(name)", "error": "\(error)"])
            state.withLock { $0.records[name]?.fail("could not start: \(error)") }
            // PROTOCOL.md §3: a crash before loading still publishes `module.crashed`; a process that could
            // not even be started is the earliest crash there is. Not restarted: nothing will have changed.
            broker.publish(ModuleCrashed(moduleName: name, error: "could not start: \(error)"))
            wake(name)
        }
    }

    /// A run not loaded within `startup_timeout_ms` is killed as failed: `module.crashed`, then a restart
    /// by its policy.
    private func startupTimedOut(_ name: String, run: Int) async {
        let ms = broker.configuration.modules.startupTimeoutMs
        let process = state.withLock { state -> ModuleProcess? in
            // A run that loaded and then left on its own (back to `starting`, free to connect again) did load.
            guard var record = state.records[name], record.run == run, record.state == .starting,
                !record.hasLoadedThisRun,
                let process = record.kill(for: "not loaded within modules.startup_timeout_ms (\(ms) ms)")
            else { return nil }
            state.records[name] = record
            return process
        }
        guard let process else { return }
        broker.logger.error(
            "module did not load in time; killing it",
            metadata: ["module": "\(name)", "modules.startup_timeout_ms": "\(ms)"])
        wake(name)
        await terminate(name, process, run: run)
    }

    // MARK: Hooks from the connections

    /// A connection of `name` from `origin` loaded it (PROTOCOL.md §3), or subscribed while another
    /// connection held it loaded. Modules that were not started for want of it start now if all their
    /// dependencies are loaded.
    func loaded(_ name: String, from origin: ConnectionOrigin) {
        settleStart(of: name) { $0.loaded(from: origin) }
    }

    /// Applies `transition` to `name`'s record; when it settles a start (the run loaded), wakes who waits
    /// for it and starts the modules that waited for it.
    private func settleStart(of name: String, _ transition: (inout ModuleRecord) -> Bool) {
        let (settled, dependents) = state.withLock { state -> (Bool, [String]) in
            guard var record = state.records[name] else { return (false, []) }
            let settled = transition(&record)
            state.records[name] = record
            guard settled, !state.shuttingDown else { return (settled, []) }
            let loaded = Set(state.records.filter { $0.value.state == .running }.keys)
            let ready = state.records.values.filter { record in
                record.waitsForDependencies && record.manifest.dependencies.contains(name)
                    && record.manifest.dependencies.allSatisfy(loaded.contains)
            }.map(\.manifest.name)
            return (settled, ready)
        }
        if settled { wake(name) }
        for dependent in dependents.sorted() {
            broker.logger.info(
                "module starts: its dependencies are loaded now", metadata: ["module": "\(dependent)"])
            // Only if it still waits for them when the task runs: an unload in between stops it for good.
            Task { [weak self] in await self?.start(dependent, onlyIf: { $0.waitsForDependencies }) }
        }
    }

    /// The last connection of `name` closed; `unloaded` is the module when it was loaded. Returns whether
    /// the supervisor publishes its `module.unloaded` (a module it started); otherwise the caller does.
    /// `unresponsive`: the connection was closed for heartbeats of silence (PROTOCOL.md §2.3). A module
    /// whose last connection closed so while its process runs is hung: it is killed as failed
    /// (`module.crashed`, then `module.unloaded` with `reason: "crashed"`) and restarts by its policy.
    func disconnected(
        _ name: String, unloaded: ModuleRegistry.LoadedModule?, saidBye: Bool, unresponsive: Bool = false
    ) -> Bool {
        let silence = 3 * broker.configuration.ipc.heartbeatMs
        let (handled, event, pending, hung) = state.withLock {
            state -> (Bool, ModuleUnloaded?, Int?, (process: ModuleProcess?, run: Int)?) in
            guard var record = state.records[name] else { return (false, nil, nil, nil) }
            defer { state.records[name] = record }
            let (handled, event, pending) = record.disconnected(unloaded, saidBye: saidBye)
            if let run = pending, unresponsive,
                record.requestKill(for: "unresponsive: no reply to the broker's pings for \(silence) ms")
            {
                // Its exit, which the kill brings, settles the pending `module.unloaded`: no grace. Without
                // its process recorded yet, the kill happens when it is (`started`).
                return (handled, event, nil, (record.process, run))
            }
            return (handled, event, pending, nil)
        }
        if let event { broker.publish(event) }
        if let hung {
            broker.logger.error("module stopped answering heartbeats; killing it", metadata: ["module": "\(name)"])
            if let process = hung.process {
                Task { [weak self] in await self?.terminate(name, process, run: hung.run) }
            }
        }
        if let run = pending {
            Task { [weak self] in
                try? await Task.sleep(for: Self.exitGrace)
                self?.graceEnded(name, run: run)
                self?.gracesEnded.add(1, ordering: .releasing)
            }
        }
        wake(name)
        return handled
    }

    /// The grace after the last connection closed is over: a process still running left on its own
    /// (`disconnected` or `bye`). One that has exited but whose exit is not handled yet is left to that exit,
    /// which says whether it crashed.
    private func graceEnded(_ name: String, run: Int) {
        // Under the broker's module-load lock: a module loading now sees this unload before or after, whole.
        broker.loadingModules {
            let event = state.withLock { state -> ModuleUnloaded? in
                guard var record = state.records[name], record.run == run, !(record.process?.hasExited ?? false)
                else {
                    return nil
                }
                defer { state.records[name] = record }
                return record.graceEnded(run: run)
            }
            if let event { broker.publish(event) }
        }
    }

    /// `name` is loading again while the grace after its last connection closed runs (its process
    /// reconnected at once): publishes the `module.unloaded` it was owed first. Called under the broker's
    /// module-load lock, before the new load's events.
    func reconnectedDuringGrace(_ name: String) {
        let event = state.withLock { state -> ModuleUnloaded? in
            guard var record = state.records[name] else { return nil }
            defer { state.records[name] = record }
            return record.reconnectedDuringGrace()
        }
        if let event { broker.publish(event) }
    }

    // MARK: Exits and restarts

    /// The end of `text`, at most `maximumBytes` of UTF-8 (whole characters), marked "…" where it was cut.
    static func tail(_ text: String, maximumBytes: Int) -> String {
        guard text.utf8.count > maximumBytes else { return text }
        var kept = Substring(text)
        while kept.utf8.count > maximumBytes - 3 { kept = kept.dropFirst(max(1, (kept.utf8.count - maximumBytes) / 4)) }
        return "…" + kept
    }

    private func exited(_ name: String, run: Int, _ exit: ModuleExit, lastErrorLines: [String]) {
        let outcome = state.withLock { state -> ModuleRecord.ExitOutcome? in
            guard var record = state.records[name], record.run == run else { return nil }
            let outcome = record.exited(exit, shuttingDown: state.shuttingDown, now: .now)
            state.records[name] = record
            return outcome
        }
        guard let outcome else { return }
        broker.revoke(outcome.token)
        let metadata: Logger.Metadata = ["module": "\(name)", "module.exit": "\(exit)"]
        if outcome.crashed {
            broker.logger.warning("module crashed", metadata: metadata)
            let lines = lastErrorLines
            // The event must fit in a frame however long the module's lines were: the stderr tail is cut to
            // a budget that stays within `max_frame` even if every byte needs a six-byte JSON escape.
            let budget = min(4096, max(256, (broker.largestEnvelope - 1024) / 6))
            broker.publish(
                ModuleCrashed(
                    moduleName: name,
                    error: lines.isEmpty
                        ? outcome.cause
                        : "\(outcome.cause); last lines of stderr:\n"
                            + Self.tail(lines.joined(separator: "\n"), maximumBytes: budget)
                ))
        } else {
            broker.logger.info("module exited", metadata: metadata)
        }
        if let unloaded = outcome.unloaded { broker.publish(unloaded) }
        if outcome.crashed {
            // The module's connection may have closed since the exit was recorded: its `module.unloaded` waited
            // for `module.crashed`, published just above.
            let unloaded = state.withLock { $0.records[name]?.crashAnnounced() }
            if let unloaded { broker.publish(unloaded) }
        }
        if let problem = outcome.gaveUp {
            broker.logger.error("module stays down", metadata: ["module": "\(name)", "module.problem": "\(problem)"])
        }
        if let delay = outcome.restartAfter {
            broker.logger.info(
                "module restarts", metadata: ["module": "\(name)", "module.backoff_ms": "\(delay.wholeMilliseconds)"])
            let next = run
            Task { [weak self] in
                try? await Task.sleep(for: delay)
                await self?.restart(name, after: next)
            }
        }
        wake(name)
    }

    /// Starts `name` again after its backoff — once its dependencies are loaded: one that went down with it
    /// (or is restarting too) would make it crash again and again, using up its `max_restarts`. Until then
    /// it waits, failed, as at the first start, and starts when they load.
    private func restart(_ name: String, after run: Int) async {
        let (due, missing) = state.withLock { state -> (Bool, String?) in
            guard let record = state.records[name], record.run == run, record.state == .restarting else {
                return (false, nil)
            }
            let missing = record.manifest.dependencies.first { state.records[$0]?.state != .running }
            if let missing {
                state.records[name]!.failForDependency("not restarted: dependency '\(missing)' is not loaded")
            }
            return (true, missing)
        }
        guard due else { return }
        if let missing {
            broker.logger.warning(
                "module waits for its dependency to restart",
                metadata: ["module": "\(name)", "module.dependency": "\(missing)"])
            wake(name)
            return
        }
        // Only if it is still this run's restart when the start runs: an unload in between stops it for good.
        await start(name, onlyIf: { $0.run == run && $0.state == .restarting })
    }

    // MARK: Control

    /// One control request at a time per module (``exclusively(_:_:)``).
    private let controls = ControlLocks()

    private actor ControlLocks {
        private var busy: Set<String> = []
        private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

        func acquire(_ name: String) async {
            guard busy.contains(name) else {
                busy.insert(name)
                return
            }
            await withCheckedContinuation { waiting[name, default: []].append($0) }
        }

        /// Hands the module to the next request waiting for it, in arrival order.
        func release(_ name: String) {
            if var queue = waiting[name], !queue.isEmpty {
                let next = queue.removeFirst()
                waiting[name] = queue.isEmpty ? nil : queue
                next.resume()
            } else {
                busy.remove(name)
            }
        }
    }

    /// What `load`, `unload` and `reload` answer when they cannot act.
    public struct ControlError: Error, Sendable, CustomStringConvertible {
        /// No module of that name in the modules directory (404).
        public let notFound: Bool
        public let description: String
    }

    /// Starts `name` from the modules directory, reading its manifest again: returns once it is loaded,
    /// failed or timed out. A module already running is left as it is.
    public func load(_ name: String) async throws(ControlError) -> ModuleStatus {
        try await exclusively(name) { () async throws(ControlError) -> ModuleStatus in
            let manifest = try checkedManifest(name)
            if state.withLock({ $0.records[name]?.state }) != .running { try checkDependenciesLoaded(manifest) }
            install(manifest)
            // An operator's start begins a fresh restart window: a module that used up `max_restarts` and was
            // loaded again gets its restarts back (its first crash would otherwise be final).
            state.withLock { state in
                if state.records[name]?.state != .running { state.records[name]?.forgetRestarts() }
            }
            await start(name)
            await settle(name)
            return try status(of: name)
        }
    }

    /// Waits until `name` is loaded, failed or timed out — or stopped, when an unload cut its start short:
    /// then until it is gone, so that the answer is `stopped`, not the `stopping` on the way.
    private func settle(_ name: String) async {
        await wait(for: name, .settled)
        if state.withLock({ $0.records[name]?.state }) == .stopping { await wait(for: name, .gone) }
    }

    /// The version `name` said in `hello`, while it is loaded.
    private func loadedVersion(of name: String) -> String? {
        broker.modules.loadedModules.first { $0.name == name }?.version
    }

    /// Refuses to start `manifest`'s module while a module it depends on is not loaded: a module starts once
    /// its dependencies are (docs/modules.md), whether the broker starts it or an operator asks.
    private func checkDependenciesLoaded(_ manifest: ModuleManifest) throws(ControlError) {
        let missing = manifest.dependencies.filter { !broker.modules.isLoaded($0) }
        guard missing.isEmpty else {
            let names = missing.map { "'\($0)'" }.joined(separator: ", ")
            throw ControlError(
                notFound: false,
                description:
                    "module: '\(manifest.name)' depends on \(names), not loaded: load \(missing.count == 1 ? "it" : "them") first"
            )
        }
    }

    /// Runs one control request on `name` at a time: a second `load`, `unload` or `reload` of the same module
    /// waits for the first to end (two operators pressing reload at once: the first reloads, then the
    /// second; each answers with where the module ended).
    private func exclusively<Result: Sendable>(
        _ name: String, _ body: () async throws(ControlError) -> Result
    ) async throws(ControlError) -> Result {
        await controls.acquire(name)
        let result: Swift.Result<Result, ControlError>
        do throws(ControlError) {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        await controls.release(name)
        return try result.get()
    }

    /// Stops `name`: SIGTERM, then SIGKILL after `shutdown_timeout_ms`; returns once its process exited
    /// and its connections closed (`module.unloaded` with `reason: "stopped"`). A module waiting to restart
    /// stays stopped.
    ///
    /// A start still waiting for its module to load — a `load` or `reload` in progress holds the module for
    /// up to `startup_timeout_ms` — is stopped at once rather than after it: an operator unloading a module
    /// whose start hangs wants it stopped now. That request then answers with the module stopped.
    public func unload(_ name: String) async throws(ControlError) -> ModuleStatus {
        if (try? status(of: name))?.state == .starting { await stop(name) }
        return try await exclusively(name) { () async throws(ControlError) -> ModuleStatus in
            _ = try status(of: name)
            await stop(name)
            // A refused manifest fixed since is not what the stopped module is listed with: it is the
            // module's manifest now (a folder refused at start gets its record).
            if state.withLock({ $0.refused[name] != nil }), let manifest = try? checkedManifest(name) {
                install(manifest)
            }
            return try status(of: name)
        }
    }

    /// Stops `name` and starts it again with its manifest read again; publishes `module.reloaded` with the
    /// old and new versions once the new process is loaded.
    /// The new manifest is read and checked before anything is stopped: a refused manifest is the error,
    /// and the running module is left running (as `systemctl reload` leaves a service whose configuration
    /// does not load).
    public func reload(_ name: String) async throws(ControlError) -> ModuleStatus {
        try await exclusively(name) { () async throws(ControlError) -> ModuleStatus in
            // The versions the module's `module.loaded` and `module.unloaded` carry (what it said in `hello`),
            // else its manifest's: the three events of a reload agree.
            let manifestVersion = try status(of: name).version
            let old = loadedVersion(of: name) ?? manifestVersion
            let manifest = try checkedManifest(name)
            try checkDependenciesLoaded(manifest)
            await stop(name)
            install(manifest)
            await start(name)
            await settle(name)
            let status = try status(of: name)
            if status.state == .running {
                broker.publish(
                    ModuleReloaded(
                        moduleName: name, oldVersion: old, newVersion: loadedVersion(of: name) ?? status.version))
            }
            return status
        }
    }

    /// `name`'s manifest read from the modules directory and checked, or why it is refused.
    private func checkedManifest(_ name: String) throws(ControlError) -> ModuleManifest {
        guard ModuleManifest.isValidName(name) else {
            throw ControlError(notFound: true, description: "module: '\(name)' is not in \(directory)")
        }
        let folder = directory + "/" + name
        guard FileManager.default.fileExists(atPath: folder + "/" + ModuleManifest.fileName) else {
            throw ControlError(notFound: true, description: "module: '\(name)' is not in \(directory)")
        }
        let manifest: ModuleManifest
        do {
            manifest = try ModuleManifest.load(folder: folder)
        } catch {
            // Listed as refused until a manifest that loads replaces it (a running module keeps running).
            state.withLock { $0.refused[name] = error }
            throw ControlError(notFound: false, description: error.description)
        }
        let dependencies = state.withLock { $0.records.mapValues(\.manifest.dependencies) }
        if let missing = manifest.dependencies.first(where: { dependencies[$0] == nil }) {
            throw ControlError(
                notFound: false,
                description: "\(manifest.folder)/module.toml: depends_on: '\(missing)' is not a module of this broker")
        }
        if let cycle = Self.cycle(to: name, from: manifest.dependencies, in: dependencies) {
            throw ControlError(
                notFound: false,
                description: "\(manifest.folder)/module.toml: depends_on: dependency cycle: "
                    + ([name] + cycle).joined(separator: " -> "))
        }
        return manifest
    }

    /// A path of dependencies from one of `start` back to `name`, ending with it, if there is one: what a
    /// manifest of `name` depending on `start` would close into a cycle with the modules already known (as
    /// at start, a cycle is refused: none of its modules could start first).
    private static func cycle(to name: String, from start: [String], in dependencies: [String: [String]])
        -> [String]?
    {
        var seen: Set<String> = []
        func path(from module: String) -> [String]? {
            if module == name { return [name] }
            guard seen.insert(module).inserted else { return nil }
            for next in dependencies[module] ?? [] {
                if let rest = path(from: next) { return [module] + rest }
            }
            return nil
        }
        for module in start {
            if let found = path(from: module) { return found }
        }
        return nil
    }

    /// Makes `manifest` the one its module starts from next (a running process keeps the one it has).
    private func install(_ manifest: ModuleManifest) {
        let name = manifest.name
        state.withLock { state in
            state.refused[name] = nil
            if state.records[name] == nil {
                state.records[name] = ModuleRecord(manifest: manifest)
            } else if state.records[name]!.process == nil {
                state.records[name]!.manifest = manifest
            }
        }
    }

    /// Stops `name`'s process, if it has one, and waits until it is gone: once the process exited, the
    /// connections still open under the module's name (a helper it started, a client using its name or its
    /// token) are closed, so that the stop ends with `module.unloaded` instead of waiting for them.
    private func stop(_ name: String) async {
        let timeout = Duration.milliseconds(broker.configuration.modules.shutdownTimeoutMs)
        let stopping = state.withLock { state -> (process: ModuleProcess?, run: Int, spawning: Bool)? in
            guard state.records[name] != nil else { return nil }
            let process = state.records[name]!.stop()
            // Its process is being made (a restart, a dependent's start): `started` stops it once it is
            // recorded, and the stop waits for that, or a `reload` would find it still starting.
            let spawning = process == nil && state.records[name]!.state == .starting
            return (process, state.records[name]!.run, spawning)
        }
        guard let stopping, let process = stopping.process else {
            if let stopping, stopping.spawning {
                _ = await wait(for: name, .ended(run: stopping.run), timeout: timeout * 2)
            }
            wake(name)
            return
        }
        await terminate(name, process, run: stopping.run)
        broker.modules.closeConnections(of: name)
        // The connections closed; one that comes back at once under the module's name (another client using
        // it) does not hold the stop for ever.
        _ = await wait(for: name, .gone, timeout: timeout)
    }

    /// SIGTERM to `process`'s group, then SIGKILL if it has not ended after `shutdown_timeout_ms`. With
    /// `run` (a kill for a failure) it has ended once that run's process exited, since a restart may follow
    /// before its connections are gone; otherwise once the module has no process and no connection.
    private func terminate(_ name: String, _ process: ModuleProcess, run: Int? = nil) async {
        let ended: Condition = run.map { .ended(run: $0) } ?? .gone
        process.signal(SIGTERM)
        if !(await wait(for: name, ended, timeout: .milliseconds(broker.configuration.modules.shutdownTimeoutMs))) {
            broker.logger.warning("module ignored SIGTERM; killing it", metadata: ["module": "\(name)"])
            process.signal(SIGKILL)
        }
    }

    /// The shutdown: every module is told to stop (no restarts from here on); they get the `node.shutdown`
    /// timeout to exit on their own, then SIGTERM, then SIGKILL after `shutdown_timeout_ms`.
    private func stopAll() async {
        let names = state.withLock { state in
            state.shuttingDown = true
            for name in state.records.keys { state.records[name]!.prepareToStop() }
            return Array(state.records.keys)
        }
        let timeout = Duration.milliseconds(broker.configuration.modules.shutdownTimeoutMs)
        // A hurried shutdown (a second signal) kills what still runs; the stops then see their modules gone.
        await withTaskGroup(of: Bool.self) { shutdown in
            shutdown.addTask {
                await withTaskGroup(of: Void.self) { stops in
                    for name in names {
                        stops.addTask {
                            if await self.wait(for: name, .gone, timeout: timeout) { return }
                            await self.stop(name)
                        }
                    }
                }
                return true
            }
            shutdown.addTask { [broker] in
                await broker.shutdownHurried()
                return false
            }
            if await shutdown.next() == true {
                shutdown.cancelAll()
                return
            }
            let running = state.withLock { $0.records.values.compactMap(\.process) }
            for process in running { process.signal(SIGKILL) }
            _ = await shutdown.next()
        }
    }

    // MARK: Listing

    /// A module as `GET /v1/modules` shows it.
    public struct ModuleStatus: Sendable, Equatable {
        public let name: String
        /// The manifest's version for a module the broker started; for an external one, what it said in `hello`.
        public let version: String
        public let state: ModuleState
        /// From heartbeats, while the module is connected.
        public let health: ModuleHealth?
        public let pid: Int32?
        public let restarts: Int
        public let loadedAt: Date?
        /// Open IPC connections of the module.
        public let connections: Int
        /// Why it is failed or stopped, when the broker knows.
        public let problem: String?
    }

    /// Every module the broker started or knows from its directory, then the external ones (connected on
    /// their own), by name.
    public var statuses: [ModuleStatus] {
        let listing = broker.modules.listing
        let connected = Dictionary(listing.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let (records, refused) = state.withLock { ($0.records, $0.refused) }
        var result = records.values.sorted { $0.manifest.name < $1.manifest.name }.map { record in
            let live = connected[record.manifest.name]
            // A newer manifest was refused and no process runs: it cannot start until the manifest is fixed.
            let refusedNow = record.process == nil ? refused[record.manifest.name] : nil
            return ModuleStatus(
                name: record.manifest.name,
                version: record.manifest.version,
                state: refusedNow == nil ? record.state : .failed,
                health: live.flatMap { broker.modules.health(of: $0.name) },
                pid: record.process?.pid,
                restarts: record.restarts,
                loadedAt: live?.loadedAt,
                connections: live?.connections ?? 0,
                problem: refusedNow.map { "manifest refused: \($0)" } ?? record.problem)
        }
        // A folder whose manifest was refused is listed too, failed with the reason: an operator sees the typo
        // in `herald modules`, not only in the broker's log.
        let refusedOnly = refused.filter { records[$0.key] == nil }.sorted { $0.key < $1.key }
        result += refusedOnly.map { name, error in
            ModuleStatus(
                name: name, version: "", state: .failed, health: nil, pid: nil, restarts: 0, loadedAt: nil,
                connections: 0, problem: "manifest refused: \(error)")
        }
        result += Self.externalStatuses(broker.modules, excluding: Set(records.keys).union(refused.keys))
        return result
    }

    /// The connected modules not named in `excluding`, as `external`.
    static func externalStatuses(_ registry: ModuleRegistry, excluding: Set<String> = []) -> [ModuleStatus] {
        registry.listing.filter { !excluding.contains($0.name) }.map { module in
            ModuleStatus(
                name: module.name, version: module.version, state: .external, health: registry.health(of: module.name),
                pid: nil, restarts: 0, loadedAt: module.loadedAt, connections: module.connections, problem: nil)
        }
    }

    private func status(of name: String) throws(ControlError) -> ModuleStatus {
        guard let status = statuses.first(where: { $0.name == name && $0.state != .external }) else {
            throw ControlError(notFound: true, description: "module: '\(name)' is not in \(directory)")
        }
        return status
    }

    private func isLoaded(_ name: String) -> Bool {
        state.withLock { $0.records[name]?.state == .running }
    }

    // MARK: Waiting

    /// Waits until `name` meets `condition`; with a `timeout`, returns `false` if it did not in time.
    @discardableResult
    private func wait(for name: String, _ condition: Condition, timeout: Duration? = nil) async -> Bool {
        let number = numbers.add(1, ordering: .relaxed).newValue
        let met: @Sendable () async -> Void = {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let now = self.state.withLock { state in
                        if Task.isCancelled || Self.holds(condition, state.records[name], registry: self.broker.modules)
                        {
                            return true
                        }
                        state.waiters[number] = Waiter(module: name, condition: condition, continuation: continuation)
                        return false
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                self.state.withLock { $0.waiters.removeValue(forKey: number) }?.continuation.resume()
            }
        }
        guard let timeout else {
            await met()
            return true
        }
        return await withTaskGroup(of: Bool.self) { race in
            race.addTask {
                await met()
                return !Task.isCancelled
            }
            race.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await race.next()!
            race.cancelAll()
            return first
        }
    }

    private static func holds(_ condition: Condition, _ record: ModuleRecord?, registry: ModuleRegistry) -> Bool {
        guard let record else { return true }
        switch condition {
        case .settled: return record.isSettled
        case .gone:
            return record.process == nil && record.state != .starting && !registry.isConnected(record.manifest.name)
        case .ended(let run):
            // Or its spawn failed: no process, and not starting any more.
            return record.hasEnded(run: run)
                || (record.run == run && record.process == nil && record.state != .starting)
        }
    }

    /// Wakes the waiters of `name` whose condition now holds.
    private func wake(_ name: String) {
        let ready = state.withLock { state in
            let record = state.records[name]
            let numbers = state.waiters.filter {
                $0.value.module == name && Self.holds($0.value.condition, record, registry: broker.modules)
            }.keys
            return numbers.compactMap { state.waiters.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ready { continuation.resume() }
    }

    // MARK: Helpers

    /// 32 random bytes, hex.
    private static func freshToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    private static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

/// A supervised module's state, as `GET /v1/modules` reports it.
public enum ModuleState: String, Sendable, Equatable {
    /// Its process runs and has not loaded yet.
    case starting
    /// Loaded (PROTOCOL.md §3).
    case running
    /// The broker asked it to stop and waits for it.
    case stopping
    /// Waiting for its next start after an exit.
    case restarting
    /// Not running: never started, unloaded, or exited and not to be restarted.
    case stopped
    /// Not running because something went wrong: it could not start, crashed and is not restarted, did not
    /// load in time, or used up `max_restarts`.
    case failed
    /// Connected on its own: the broker did not start it.
    case external
}
