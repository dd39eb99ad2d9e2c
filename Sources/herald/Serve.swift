import ArgumentParser
import Foundation
import HeraldLog
import HeraldRabbitMQ
import HeraldServer
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `herald serve`: runs the broker daemon (PROTOCOL.md §8).
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker daemon.")

    @Option(help: "The configuration file (default: ./herald.toml when it exists).")
    var config: String?

    @Option(name: .customLong("data-dir"), help: "Where the broker keeps its data (data_dir).")
    var dataDirectory: String?

    @Option(help: "The IPC socket path (ipc.socket).")
    var socket: String?

    @Option(name: .customLong("ipc-tcp"), help: "A TCP listener for the IPC protocol, host:port (ipc.tcp).")
    var ipcTCP: String?

    @Option(help: "The HTTP listener, host:port (http.listen).")
    var http: String?

    @Option(name: .customLong("modules-dir"), help: "The modules directory (modules.dir).")
    var modulesDirectory: String?

    @Flag(name: .customLong("print-config"), help: "Print the configuration in effect and exit.")
    var printConfig = false

    func run() async throws {
        // `node.startup_completed`'s `duration_ms` counts from here: reading the configuration, recovering the
        // log and rebuilding the dedup window are most of a start-up.
        let began = ContinuousClock.now
        let configuration: HeraldConfiguration
        do {
            configuration = try effectiveConfiguration()
        } catch let error as ConfigurationError {
            throw fail(error.description)
        }
        if printConfig {
            print(configuration.tomlDescription, terminator: "")
            return
        }
        // Trapped before anything is opened, so that a signal during the start-up (a long log recovery) is a
        // clean shutdown, not the default action's death.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        do {
            try configuration.checkBuiltFeatures()
        } catch {
            throw fail(error.description)
        }
        do {
            try FileManager.default.createDirectory(
                atPath: configuration.dataDirectory,
                withIntermediateDirectories: true
            )
        } catch {
            throw fail("data_dir: cannot create \(configuration.dataDirectory): \(error.localizedDescription)")
        }

        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let metrics = Self.bootstrapMetrics()
        let logger = Logger(label: "herald")
        logger.info("memory allocator", metadata: ["allocator": "\(Allocator.inUse)"])
        let openFiles = OpenFileLimit.raiseToHardLimit()
        logger.info(
            "open files limit",
            metadata: ["open_files": "\(openFiles.after)", "open_files.before": "\(openFiles.before)"])
        // Where it listens must be free: checked before anything starts or is stored.
        let listens =
            [(configuration.http.listen, "http.listen")]
            + (configuration.ipc.tcp.isEmpty ? [] : [(configuration.ipc.tcp, "ipc.tcp")])
        if let problem = ListenCheck.problem(creatingSocketAt: configuration.socketPath)
            ?? listens.lazy.compactMap({ ListenCheck.problem(listening: $0.0, key: $0.1) }).first
        {
            throw fail(problem)
        }
        // A broker already listening on the socket: refused before anything starts (the listener would
        // refuse it too, but only after the HTTP listener had opened and the shutdown had run).
        if IPCListener.acceptsConnections(unixSocket: configuration.socketPath) {
            throw fail(
                "ipc.socket: \(configuration.socketPath) is in use: a broker (or another program) accepts connections on it"
            )
        }
        let log: DurableLog
        do {
            log = try DurableLog(configuration: configuration.logConfiguration)
        } catch {
            throw fail("log: \(error)")
        }
        defer { log.close() }
        for truncation in log.recovery.truncations {
            logger.warning(
                "log recovery cut a damaged tail",
                metadata: [
                    "file": "\(truncation.file)", "position": "\(truncation.position)",
                    "bytes_removed": "\(truncation.bytesRemoved)", "reason": "\(truncation.reason)",
                ])
        }
        for damage in log.recovery.damagedRecords {
            logger.error(
                "log recovery found damaged records in a sealed segment: acknowledged events are lost there, the records around them are kept",
                metadata: [
                    "file": "\(damage.file)", "position": "\(damage.position)", "reason": "\(damage.reason)",
                    "first_offset": "\(damage.offsets.lowerBound)", "records": "\(damage.offsets.count)",
                ])
        }
        for missing in log.recovery.missingRecords {
            logger.error(
                "log recovery found offsets that no segment holds (a segment file is gone): acknowledged events are lost",
                metadata: [
                    "partition": "\(missing.directory)", "first_missing_offset": "\(missing.offsets.lowerBound)",
                    "records_lost": "\(missing.offsets.count)",
                ])
        }
        log.observeProblems { message in
            logger.error("durable log problem", metadata: ["problem": "\(message)"])
        }
        for problem in log.recovery.journalProblems {
            logger.warning("log recovery did not replay a journal file", metadata: ["reason": "\(problem)"])
        }
        if log.recovery.recordsReplayed > 0 {
            logger.info(
                "log recovery gave back records from the journal (written, not yet synced in their segments)",
                metadata: ["records": "\(log.recovery.recordsReplayed)"])
        }
        for lost in log.recovery.recordsLost {
            logger.error(
                "log recovery found a partition shorter than it was known synced: acknowledged events are lost",
                metadata: [
                    "partition": "\(lost.partition)", "first_missing_offset": "\(lost.offsets.lowerBound)",
                    "records_lost": "\(lost.offsets.count)",
                ])
        }
        for gap in log.recovery.replayGaps {
            logger.error(
                "log recovery found records missing that the journal could not give back",
                metadata: ["partition": "\(gap.partition)", "first_missing_offset": "\(gap.offset)"])
        }
        logger.info(
            "log opened",
            metadata: [
                "records": "\(log.recovery.records)", "partitions": "\(log.partitionCount)",
                "recovery": "\(log.recovery.duration)",
            ])
        _ = try? log.applyRetention(now: Int64(Date().timeIntervalSince1970 * 1000))
        let groups: ConsumerGroups
        do {
            groups = try ConsumerGroups(
                log: log, directory: configuration.groupsDirectory, settings: configuration.groupSettings)
        } catch {
            throw fail("groups: \(error)")
        }
        // Closed before the log (deferred later, runs first): the last group state is written.
        defer { groups.close() }
        let broker = Broker(
            configuration: configuration, logger: logger, log: log, groups: groups, startupBegan: began)
        // EVENTS.md's startup order: config.loaded, the modules, node.startup_completed.
        broker.configurationLoaded()
        let listener = IPCListener(broker: broker)
        let tcpListener = IPCListener.tcp(for: broker)
        let gateway = HTTPGateway(broker: broker, metrics: { metrics.emitToString() })
        let supervisor = ModuleSupervisor(broker: broker)
        var bridge: RabbitMQBridge?
        if configuration.bridge != nil {
            do {
                bridge = try RabbitMQBridge(broker: broker)
            } catch {
                throw fail("\(error)")
            }
        }
        // Shut down in reverse: the supervisor first, while the socket still serves the modules it stops; the
        // IPC listeners' drain next; the HTTP gateway last, so that probes and operators watch the shutdown
        // through (docs/protocol.md, "Shutdown").
        let services = ServiceGroup(
            configuration: .init(
                services: [gateway, listener] + (tcpListener.map { [$0] } ?? []) + (bridge.map { [$0] } ?? []) + [
                    GroupLagMonitor(broker: broker), Housekeeping(broker: broker), supervisor,
                ],
                logger: logger
            )
        )
        // SIGTERM or SIGINT shuts down gracefully; a second one (Ctrl-C twice) ends the shutdown's waiting
        // (docs/operations.md, "Stopping"). The signals were trapped as `run` began (`signals`), and are
        // buffered until now: one that came during the start-up still starts the shutdown (the group
        // remembers it if its services are not running yet).
        let watcher = Task {
            var count = 0
            for await signal in signals {
                count += 1
                logger.info("signal received", metadata: ["signal": "\(signal)"])
                if count == 1 { await services.triggerGracefulShutdown() } else { broker.hurryShutdown() }
            }
        }
        defer { watcher.cancel() }
        do {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await services.run() }
                try await listener.waitUntilListening()
                try await tcpListener?.waitUntilListening()
                try await gateway.waitUntilListening()
                // Written straight to the file descriptor: a supervisor waiting for this line sees it at once.
                // Not once a shutdown began (a signal during the start-up): the listeners no longer accept.
                if !broker.isShuttingDown {
                    FileHandle.standardOutput.write(
                        Data("herald ready socket=\(listener.path) http=\(gateway.address)\n".utf8))
                }
                await supervisor.startAll()
                broker.completeStartup(
                    components: ["log", "groups", "ipc"] + (tcpListener == nil ? [] : ["ipc-tcp"])
                        + (bridge == nil ? [] : ["bridge"]) + ["http", "modules", "housekeeping"])
                try await tasks.waitForAll()
            }
        } catch {
            throw fail("\(error)")
        }
        await broker.completeShutdown()
    }

    /// Makes Prometheus the backend of swift-metrics, with buckets fitted to what Herald times, and returns
    /// the registry `GET /metrics` renders.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["herald_log_fsync_duration_seconds"] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .seconds(1),
        ]
        factory.durationHistogramBuckets["herald_http_request_duration_seconds"] = [
            .microseconds(250), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
            .seconds(30),
        ]
        factory.durationHistogramBuckets["herald_delivery_latency_seconds"] = [
            .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(5),
        ]
        factory.durationHistogramBuckets["herald_group_delivery_latency_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
            .seconds(30), .seconds(60), .seconds(300), .seconds(3600),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// Defaults, then the file, then the flags.
    private func effectiveConfiguration() throws -> HeraldConfiguration {
        var configuration = HeraldConfiguration()
        let file = config ?? (FileManager.default.fileExists(atPath: "herald.toml") ? "herald.toml" : nil)
        if let file {
            let text: String
            do throws(TextFileError) {
                text = try TextFile.read(file)
            } catch {
                throw ConfigurationError(file: file, "cannot be read: \(error)")
            }
            configuration = try configuration.applying(toml: text)
        }
        if let dataDirectory { configuration.dataDirectory = dataDirectory }
        if let socket { configuration.ipc.socket = socket }
        if let ipcTCP { configuration.ipc.tcp = ipcTCP }
        if let http { configuration.http.listen = http }
        if let modulesDirectory { configuration.modules.directory = modulesDirectory }
        try configuration.validate()
        return configuration
    }
}
