import HeraldCore
import HeraldLog
import Logging
import Synchronization

/// The broker's shared state: the configuration it runs with and the bus every connection publishes to
/// and subscribes on.
public final class Broker: Sendable {
    /// The broker's name, announced in `welcome` and set as `producer` of its own events.
    public static let serverName = "herald"
    /// The broker's version, announced in `welcome`.
    public static let serverVersion = "0.1.0"

    /// The configuration in effect.
    public let configuration: HeraldConfiguration
    /// The bus all live routing goes through.
    public let bus: EventBus
    /// The durable log events are stored in; `nil` runs a pure in-memory bus.
    public let log: DurableLog?
    /// The consumer groups reading the log; `nil` without a log.
    public let groups: ConsumerGroups?
    /// The topics stored in the log (`log.persist`).
    let persist: [TopicPattern]
    /// The `event_id`s accepted within `log.dedup_window_ms`.
    let dedup: DedupWindow
    package let logger: Logger
    /// Connected and loaded modules.
    let modules = ModuleRegistry()
    /// Held while a module loads (``loadingModules(_:)``).
    private let moduleLoads = StateLock(())
    /// Subscribe coverage answers by token and pattern (`checkSubscribe`).
    let coverage = StateLock<[CoverageKey: Bool]>([:])
    /// Counters and gauges for `GET /metrics`.
    let metrics = BrokerMetrics()
    /// The pumps woken on each event loop, run by one task per loop (``PumpWakeups``).
    let pumpWakeups = LoopPumpWakeups()
    private let sessions = Atomic<UInt64>(0)
    private let started = Atomic<Bool>(false)
    /// When the start-up began, for `node.startup_completed`'s `duration_ms`.
    private let startupBegan: ContinuousClock.Instant
    /// Open once the shutdown has begun.
    private let shutdownLatch = Latch()
    /// Open once the shutdown must not wait any longer (a second signal): ``hurryShutdown()``.
    private let hurryLatch = Latch()
    /// When the shutdown began, for `node.shutdown_completed`'s `duration_ms`.
    private let shutdownStarted = Mutex<ContinuousClock.Instant?>(nil)
    /// The supervisor of the modules the broker starts, while it runs.
    private let supervisorSlot = Mutex<ModuleSupervisor?>(nil)
    /// `maintenance.data` work under way and the work asked for meanwhile (``MaintenanceQueue``): the shutdown
    /// waits for it, so that its `maintenance.completed` is stored before the log closes.
    let maintenanceQueue = Mutex(MaintenanceQueue())
    /// Tokens issued to the modules the broker started, by secret (PROTOCOL.md §6).
    private let issuedTokens = Mutex<[String: IssuedToken]>([:])

    /// A broker with `configuration`, logging to `logger`, storing events in `log` (opened from
    /// ``HeraldConfiguration/logConfiguration``) and serving consumer groups from `groups` (opened on that
    /// log in ``HeraldConfiguration/groupsDirectory``) or, without a log, keeping nothing. `startupBegan` is
    /// when `herald serve` began, before it read its configuration and opened the log: the start of what
    /// `node.startup_completed`'s `duration_ms` measures.
    public init(
        configuration: HeraldConfiguration, logger: Logger, log: DurableLog? = nil, groups: ConsumerGroups? = nil,
        startupBegan: ContinuousClock.Instant = .now
    ) {
        self.startupBegan = startupBegan
        self.configuration = configuration
        self.bus = EventBus()
        self.logger = logger
        self.log = log
        self.groups = groups
        // Validated with the configuration.
        self.persist = configuration.log.persist.compactMap { try? TopicPattern($0) }
        self.dedup = DedupWindow(windowMilliseconds: configuration.log.dedupWindowMs)
        rebuildDedupWindow()
    }

    /// Publishes an event of the broker's own (lifecycle events), with `producer` set to `herald` and
    /// `metadata` added. Returns the envelope as published (with its offset when stored).
    @discardableResult
    func publish<Event: CatalogEvent>(_ event: Event, metadata: [String: String] = [:]) -> EventEnvelope? {
        do {
            var all = EventEnvelope.Metadata()
            for (name, value) in metadata { all[name] = value }
            all["producer"] = Self.serverName
            let envelope = try EventEnvelope(event, metadata: all)
            // One key for all of the broker's own events: one partition, so the log keeps them in the order
            // they were published (EVENTS.md's lifecycle order survives a replay).
            var fields = envelope.fields
            fields.key = Self.serverName
            do throws(AcceptError) {
                return try accept(fields).envelope
            } catch {
                logger.error(
                    "a broker event could not be stored",
                    metadata: ["event.type": "\(Event.eventType)", "error": "\(error)"])
                bus.publish(envelope)
                return envelope
            }
        } catch {
            // Catalog events always encode; this would be a defect in the catalog, not an input error.
            logger.error("a broker event could not be encoded", metadata: ["event.type": "\(Event.eventType)"])
            return nil
        }
    }

    /// Runs `body` while no other module loads: a module's load (its `module.loaded` replay and publish) and
    /// the registration of the subscription it replays to happen as one step, so that a module loading at
    /// the same moment reaches that subscription exactly once — in the replay or live, never both, never
    /// neither (PROTOCOL.md §3).
    func loadingModules<Result, Failure: Error>(_ body: () throws(Failure) -> Result) throws(Failure) -> Result {
        try moduleLoads.withLock { _ throws(Failure) -> Result in try body() }
    }

    /// Whether `node.startup_completed` was published and the shutdown has not begun: `GET /readyz`
    /// answers 200 (PROTOCOL.md §7).
    public var isReady: Bool { started.load(ordering: .acquiring) && !isShuttingDown }

    /// Publishes `node.startup_completed` with the time since the start-up began and the `components`
    /// running, once every listener accepts connections; later calls do nothing.
    public func completeStartup(components: [String]) {
        // A shutdown that began first ends the start-up: no `node.startup_completed` after `node.shutdown`.
        guard !isShuttingDown,
            started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let duration = ContinuousClock.now - startupBegan
        publish(NodeStartupCompleted(durationMs: Int(duration.wholeMilliseconds), components: components))
    }

    /// Whether `node.shutdown` was published: new subscribes and publishes are refused with
    /// `shutting_down` (PROTOCOL.md §2.4).
    public var isShuttingDown: Bool { shutdownLatch.isOpen }

    /// A listener could not start: the start-up ends, and the shutdown it begins says `startup_failed`.
    public func startupFailed() {
        guard !started.load(ordering: .acquiring) else { return }
        beginShutdown(reason: "startup_failed")
    }

    /// Starts the shutdown: publishes `node.shutdown` (with the time modules and clients get to leave) the
    /// first time it is called; later calls do nothing. The reason is `signal` (EVENTS.md: SIGTERM or SIGINT,
    /// whether or not the start-up completed) unless ``startupFailed()`` began it.
    public func beginShutdown(reason: String = "signal") {
        // Opening the latch sets the flag new requests are refused by and wakes who waits for the shutdown.
        guard shutdownLatch.open() else { return }
        shutdownStarted.withLock { $0 = .now }
        logger.info("shutting down", metadata: ["shutdown.reason": "\(reason)"])
        let timeout = (configuration.modules.shutdownTimeoutMs + 999) / 1000
        // Published after the flag is set: a subscriber told of the shutdown finds new requests refused.
        publish(NodeShutdown(reason: reason, timeoutSeconds: timeout))
        // EVENTS.md's shutdown order: modules flush their own state in the time they are given; the broker
        // flushes the log on the same event.
        publish(MaintenanceData(operation: .flush, urgency: .high, reason: .shutdown, timeoutSeconds: timeout))
    }

    /// Ends the shutdown once every service stopped: flushes the log, then stores
    /// `node.shutdown_completed` with the time since the shutdown began and flushes again (EVENTS.md).
    public func completeShutdown() async {
        let began = shutdownStarted.withLock { $0 } ?? .now
        // The shutdown's own flush (and any other maintenance) ends with `maintenance.completed`: stored
        // before `node.shutdown_completed`, while the log is open.
        await maintenanceQueue.withLock({ $0.running })?.value
        try? await log?.flush()
        publish(NodeShutdownCompleted(durationMs: Int((ContinuousClock.now - began).wholeMilliseconds)))
        try? await log?.flush()
    }

    /// The module supervisor, while it runs.
    var supervisor: ModuleSupervisor? {
        get { supervisorSlot.withLock { $0 } }
        set { supervisorSlot.withLock { $0 = newValue } }
    }

    /// A token the broker gave a module it started.
    struct IssuedToken: Sendable {
        /// The module it was issued to: only that module may present it.
        let module: String
        let permissions: HeraldConfiguration.Token
    }

    /// Makes `secret` valid for `module`, with `permissions`, until ``revoke(_:)``.
    func issue(_ secret: String, to module: String, _ permissions: HeraldConfiguration.Token) {
        issuedTokens.withLock { $0[secret] = IssuedToken(module: module, permissions: permissions) }
    }

    /// Ends an issued token (its module's process exited).
    func revoke(_ secret: String?) {
        guard let secret else { return }
        _ = issuedTokens.withLock { $0.removeValue(forKey: secret) }
    }

    /// The issued token with `secret`, if any.
    func issuedToken(_ secret: String) -> IssuedToken? {
        issuedTokens.withLock { tokens in
            tokens.first { IPCSession.sameSecret($0.key, secret) }?.value
        }
    }

    /// Returns once the shutdown has begun (at once if it has), or when the calling task is cancelled.
    func shutdownBegun() async {
        await shutdownLatch.wait()
    }

    /// Ends the shutdown's waiting (a second SIGTERM or SIGINT, as Ctrl-C twice): modules still running are
    /// killed and connections still open are closed now, instead of at `modules.shutdown_timeout_ms`. What
    /// was accepted is still flushed to the log before the broker exits. Begins the shutdown if it has not.
    public func hurryShutdown() {
        beginShutdown()
        guard hurryLatch.open() else { return }
        logger.warning("second signal: stopping now, without waiting for modules and connections to leave")
    }

    /// Whether ``hurryShutdown()`` was called.
    var isShutdownHurried: Bool { hurryLatch.isOpen }

    /// Returns once ``hurryShutdown()`` was called (at once if it was), or when the calling task is cancelled.
    func shutdownHurried() async {
        await hurryLatch.wait()
    }

    /// A new session name for a `welcome`: `s-1`, `s-2`, …
    func nextSession() -> String {
        "s-\(sessions.add(1, ordering: .relaxed).newValue)"
    }
}

/// A token's name and a subscribe pattern: what a coverage answer is remembered by.
struct CoverageKey: Hashable {
    let token: String
    let pattern: String
}
