import HeraldCore

/// One supervised module's state machine (``ModuleSupervisor``): which run of its process is current, how
/// that run is going, and what happens when it ends. Every transition is a method that returns what the
/// supervisor must do outside its lock.
struct ModuleRecord {
    var manifest: ModuleManifest
    private(set) var state = ModuleState.stopped
    /// The current run's process, while it runs.
    private(set) var process: ModuleProcess?
    /// Counts the starts; events of an earlier run are ignored.
    private(set) var run = 0
    /// Restarts since the broker started.
    private(set) var restarts = 0
    /// When the restarts within the last ``ModuleManifest/Restart/window`` were scheduled.
    private var recentRestarts: [ContinuousClock.Instant] = []
    /// The broker asked the current run to stop (unload, reload, shutdown).
    private var stopping = false
    /// Why the broker is killing the current run as failed (it did not load in time, or stopped answering
    /// heartbeats): its exit is then a crash whatever its status, and restarts by the policy.
    private var killedFor: String?
    /// How the current run's process ended, once it has.
    private var exit: ModuleExit?
    /// The run in which the module was loaded, if the current one.
    private var loadedRun: Int?
    /// The module's last connection closed while its process still ran: the `module.unloaded` waits a
    /// moment for the exit to know whether it crashed.
    private var pendingUnload: (version: String, saidBye: Bool)?
    /// An exit recorded as a crash whose `module.crashed` is not published yet: a `module.unloaded` for the
    /// connection's close waits in ``unloadAfterCrash`` until it is (EVENTS.md: crashed, then unloaded).
    private var crashUnannounced = false
    private var unloadAfterCrash: ModuleUnloaded?
    /// The loaded run's last connection has not closed yet.
    private var loadedRunConnected = false
    /// How the previous run ended, when a new run began before that run's last connection closed (a busy
    /// event loop notices a closed socket later than the supervisor's thread notices the exit): that close
    /// is still the previous run's `module.unloaded`, with the reason its exit gives.
    private var previousRunEnd: (crashed: Bool, stopped: Bool)?
    /// The token issued to the current run.
    private var token: String?
    /// Processes whose connections loaded the module before the run's process was recorded (a module can
    /// connect and subscribe before the task that spawned it records it, on a busy machine), for
    /// ``started(_:run:)`` to check once it knows the run's process group.
    private var loadersBeforeStart: [Int32] = []
    /// Why the module is failed or stopped.
    var problem: String?

    init(manifest: ModuleManifest) {
        self.manifest = manifest
    }

    /// `startAll` will start it once its dependencies settle.
    var awaitingStart = false

    /// Loaded, failed, being killed as failed (it did not load in time), or not starting at all: what
    /// `startAll` and `load` wait for.
    /// A run that loaded and whose connection then closed with its process running is `starting` again,
    /// but settled: it did load, and no startup timeout will end it.
    var isSettled: Bool { !awaitingStart && (state != .starting || killedFor != nil || loadedRun == run) }

    /// A new run begins with `token`.
    mutating func begin(token: String) {
        awaitingStart = false
        waitsForDependencies = false
        previousRunEnd = nil
        if loadedRun == run, loadedRunConnected, let exit {
            previousRunEnd = (exit.isFailure || killedFor != nil, stopping)
        }
        loadedRunConnected = false
        run += 1
        state = .starting
        stopping = false
        exit = nil
        loadedRun = nil
        pendingUnload = nil
        crashUnannounced = false
        unloadAfterCrash = nil
        killedFor = nil
        problem = nil
        loadersBeforeStart = []
        self.token = token
    }

    /// The run's process started (unless it already exited, which ``exited(_:shuttingDown:now:)`` handled).
    /// Returns whether to kill it at once: a kill was asked for before its process was known (its module can
    /// connect, load and go silent before the task that spawned it records it, on a busy machine); and
    /// whether it loaded before it was recorded, which settles the start now.
    mutating func started(_ process: ModuleProcess, run: Int) -> (kill: Bool, loaded: Bool) {
        guard run == self.run, exit == nil else { return (false, false) }
        self.process = process
        // A stop asked for while the process was being spawned (an unload of a start that had not recorded
        // its process: ``stop()`` found none to stop): it is stopped now. Before, it ran on unstopped, and
        // the start and the unload waited for each other for ever.
        if stopping {
            state = .stopping
            loadersBeforeStart = []
            return (true, false)
        }
        let leader = process.pid
        let loadedEarlier = loadersBeforeStart.contains {
            ConnectionOrigin(peerProcess: $0).isRun(token: nil, leader: leader)
        }
        loadersBeforeStart = []
        return (killedFor != nil, loadedEarlier && markLoaded())
    }

    /// The module could not start at all.
    mutating func fail(_ problem: String) {
        awaitingStart = false
        state = .failed
        self.problem = problem
        token = nil
    }

    /// Not started because a dependency was not loaded: it starts when they all are (a dependency that
    /// crashed or timed out may load after its restart).
    private(set) var waitsForDependencies = false

    /// The module is not started: a dependency is not loaded.
    mutating func failForDependency(_ problem: String) {
        fail(problem)
        waitsForDependencies = true
    }

    /// A connection from `origin` loaded the module, or subscribed while another connection of its name
    /// held it loaded; returns whether that settles a start. Only the run's own connections do: another
    /// client using the module's name loads the name (PROTOCOL.md §3), not the process the broker waits for.
    mutating func loaded(from origin: ConnectionOrigin) -> Bool {
        guard state == .starting, process != nil || exit == nil else { return false }
        guard origin.isRun(token: token, leader: process?.pid) else {
            if process == nil, let peer = origin.peerProcess { loadersBeforeStart.append(peer) }
            return false
        }
        return markLoaded()
    }

    private mutating func markLoaded() -> Bool {
        guard state == .starting else { return false }
        state = .running
        loadedRun = run
        loadedRunConnected = true
        previousRunEnd = nil
        return true
    }

    /// The module's last connection closed. Returns whether the supervisor handles `module.unloaded`, the
    /// event to publish now, and the run whose grace period starts (the process still runs).
    mutating func disconnected(_ unloaded: ModuleRegistry.LoadedModule?, saidBye: Bool) -> (Bool, ModuleUnloaded?, Int?)
    {
        // A connection that loaded the module before its process was recorded has closed: it no longer holds
        // the module loaded, and must not settle the start when the process is recorded.
        loadersBeforeStart = []
        guard let unloaded else { return (false, nil, nil) }
        if loadedRun == nil, let previous = previousRunEnd {
            previousRunEnd = nil
            let reason: UnloadReason =
                previous.stopped ? .stopped : previous.crashed ? .crashed : saidBye ? .bye : .disconnected
            return (true, ModuleUnloaded(moduleName: manifest.name, version: unloaded.version, reason: reason), nil)
        }
        // Only while the run's own connections hold the module: once they all closed (the run ended, or
        // was stopped), a client that loads the module under its name later is not that run, and its
        // leaving says `bye` or `disconnected`, not the run's `stopped` or `crashed`.
        guard loadedRun == run, loadedRunConnected else { return (false, nil, nil) }
        loadedRunConnected = false
        if stopping {
            return (true, ModuleUnloaded(moduleName: manifest.name, version: unloaded.version, reason: .stopped), nil)
        }
        if let exit {
            let reason: UnloadReason = exit.isFailure || killedFor != nil ? .crashed : saidBye ? .bye : .disconnected
            let event = ModuleUnloaded(moduleName: manifest.name, version: unloaded.version, reason: reason)
            guard !crashUnannounced else {
                unloadAfterCrash = event
                return (true, nil, nil)
            }
            return (true, event, nil)
        }
        pendingUnload = (unloaded.version, saidBye)
        return (true, nil, run)
    }

    /// `module.crashed` was published: the `module.unloaded` that waited for it, if the last connection
    /// closed in between.
    mutating func crashAnnounced() -> ModuleUnloaded? {
        crashUnannounced = false
        defer { unloadAfterCrash = nil }
        return unloadAfterCrash
    }

    /// The module loads again (a new connection of the same process) while the grace after its last
    /// connection closed still runs: the `module.unloaded` it was owed comes now, before its new
    /// `module.loaded`, and it is starting again (``loaded()`` makes it running).
    mutating func reconnectedDuringGrace() -> ModuleUnloaded? {
        guard let pending = pendingUnload else { return nil }
        pendingUnload = nil
        if state == .running { state = .starting }
        return ModuleUnloaded(
            moduleName: manifest.name, version: pending.version, reason: pending.saidBye ? .bye : .disconnected)
    }

    /// The grace after a disconnection ended with the process still running: the module left on its own.
    mutating func graceEnded(run: Int) -> ModuleUnloaded? {
        guard run == self.run, let pending = pendingUnload else { return nil }
        pendingUnload = nil
        if state == .running { state = .starting }
        return ModuleUnloaded(
            moduleName: manifest.name, version: pending.version, reason: pending.saidBye ? .bye : .disconnected)
    }

    /// What follows an exit.
    struct ExitOutcome {
        /// The token to revoke.
        var token: String?
        /// Publish `module.crashed`.
        var crashed = false
        /// What `module.crashed` says happened: the exit, after why the broker killed the run if it did.
        var cause = ""
        /// Publish this `module.unloaded` after `module.crashed`.
        var unloaded: ModuleUnloaded?
        /// Start again after this wait.
        var restartAfter: Duration?
        /// It used up its restarts: why it stays down.
        var gaveUp: String?
    }

    /// The current run's process exited.
    mutating func exited(_ exit: ModuleExit, shuttingDown: Bool, now: ContinuousClock.Instant) -> ExitOutcome {
        var outcome = ExitOutcome(token: token)
        token = nil
        process = nil
        self.exit = exit
        let failed = exit.isFailure || killedFor != nil
        let crashed = failed && !stopping
        let cause = killedFor.map { "\($0); \(exit)" } ?? "\(exit)"
        outcome.crashed = crashed
        outcome.cause = cause
        crashUnannounced = crashed
        if let pending = pendingUnload {
            pendingUnload = nil
            let reason: UnloadReason =
                stopping ? .stopped : crashed ? .crashed : pending.saidBye ? .bye : .disconnected
            outcome.unloaded = ModuleUnloaded(moduleName: manifest.name, version: pending.version, reason: reason)
        }
        if stopping || shuttingDown {
            // Asked to stop, it is stopped, even if it was being killed for not loading in time meanwhile.
            state = killedFor != nil && !stopping ? .failed : .stopped
            return outcome
        }
        let policy = manifest.restart.policy
        guard policy == .always || (policy == .onFailure && failed) else {
            state = failed ? .failed : .stopped
            problem = failed ? "\(cause); restart policy \(policy.rawValue)" : nil
            return outcome
        }
        recentRestarts.removeAll { now - $0 >= ModuleManifest.Restart.window }
        guard recentRestarts.count < manifest.restart.maxRestarts else {
            state = .failed
            problem =
                "\(cause) after \(recentRestarts.count) restarts within 10 minutes (restart.max_restarts); it stays down"
            outcome.gaveUp = problem
            return outcome
        }
        outcome.restartAfter = manifest.restart.backoff(after: recentRestarts.count)
        recentRestarts.append(now)
        restarts += 1
        state = .restarting
        problem = cause
        return outcome
    }

    /// The broker kills the current run as failed, for `reason`: returns the process to signal, or `nil`
    /// when it has none or is being stopped anyway.
    mutating func kill(for reason: String) -> ModuleProcess? {
        guard process != nil, requestKill(for: reason) else { return nil }
        return process
    }

    /// Asks for the run's process to be killed as failed, for `reason`; `false` when there is nothing to
    /// kill (it is stopping, it exited, a kill was already asked for). The caller kills ``process`` when
    /// there is one; otherwise ``started(_:run:)`` says to kill it once it is known.
    mutating func requestKill(for reason: String) -> Bool {
        guard !stopping, exit == nil, killedFor == nil else { return false }
        killedFor = reason
        problem = reason
        return true
    }

    /// Whether the current run has loaded (it may have left since).
    var hasLoadedThisRun: Bool { loadedRun == run }

    /// Whether run `run` has ended (its process exited, or a later run began).
    func hasEnded(run: Int) -> Bool {
        run != self.run || exit != nil
    }

    /// The broker stops the module: returns the process to signal, or `nil` when there is none (a pending
    /// restart is cancelled).
    mutating func stop() -> ModuleProcess? {
        prepareToStop()
        if process != nil { state = .stopping }
        return process
    }

    /// Forgets the restarts counted in the window (`restart.max_restarts`).
    mutating func forgetRestarts() {
        recentRestarts.removeAll()
    }

    /// From now on an exit of the current run is a stop, not a crash, and nothing restarts.
    mutating func prepareToStop() {
        stopping = true
        waitsForDependencies = false
        // Not started later by `startAll` once its dependencies settle: the operator stopped it.
        awaitingStart = false
        if state == .restarting { state = .stopped }
    }
}
