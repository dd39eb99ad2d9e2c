import Foundation
import HeraldCore
import ServiceLifecycle
import Synchronization

/// The broker's periodic work (EVENTS.md "Maintenance and resources", `[housekeeping]`): it publishes
/// `maintenance.data {cleanup, low, periodic}` (the broker acts on it like any other), `health.check` with
/// the state of the node and its modules, and watches the free space of the data directory's file system:
/// below `disk_low_percent` it publishes `resource.disk_space_low` and `maintenance.data {both, high,
/// low_disk}`, once per crossing.
public struct Housekeeping: Service {
    let broker: Broker
    /// The last disk check could not read the file system (said once until one can).
    private let statvfsFailed = Flag()

    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    public init(broker: Broker) {
        self.broker = broker
    }

    public func run() async throws {
        let settings = broker.configuration.housekeeping
        // With every interval 0 there is nothing to do, but the service still runs until the shutdown: a
        // service that returns early ends the whole group (the broker stopped right after its ready line).
        guard settings.cleanupIntervalMs > 0 || settings.healthCheckIntervalMs > 0 || settings.diskCheckIntervalMs > 0
        else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await every(settings.cleanupIntervalMs) { cleanup() } }
                tasks.addTask { await every(settings.healthCheckIntervalMs) { checkHealth() } }
                tasks.addTask {
                    var low = false
                    await every(settings.diskCheckIntervalMs, startAtOnce: true) { checkDisk(wasLow: &low) }
                }
            }
        }
    }

    /// Runs `body` every `milliseconds` (never when 0) until cancelled.
    private func every(_ milliseconds: Int, startAtOnce: Bool = false, _ body: () -> Void) async {
        guard milliseconds > 0 else { return }
        if startAtOnce { body() }
        while true {
            do {
                try await Task.sleep(for: .milliseconds(milliseconds))
            } catch {
                return
            }
            body()
        }
    }

    /// Publishes the periodic cleanup, down to the log's retention age.
    func cleanup() {
        let days = broker.configuration.log.retentionDays
        broker.publish(
            MaintenanceData(operation: .cleanup, urgency: .low, reason: .periodic, targetAgeDays: days > 0 ? days : nil)
        )
    }

    /// Publishes `health.check`: the node is healthy when it is ready and no module the broker supervises is
    /// failed, on its way up (starting, restarting) or running but not healthy. A module that is stopped (an
    /// operator unloaded it, or it exited cleanly and its policy does not restart it) or being stopped is
    /// where it was meant to be.
    func checkHealth() {
        let modules = broker.supervisor?.statuses ?? []
        var report: [String: JSONValue] = ["ready": .bool(broker.isReady)]
        var modulesReport: [String: JSONValue] = [:]
        var healthy = broker.isReady
        for module in modules {
            modulesReport[module.name] = .object([
                "state": .string(module.state.rawValue),
                "health": module.health.map { .string($0.rawValue) } ?? .null,
            ])
            if !Self.isWhereItShouldBe(module) { healthy = false }
        }
        report["modules"] = .object(modulesReport)
        if let usage = broker.log?.usage {
            report["log_bytes"] = .integer(Int64(usage.bytes))
            report["log_segments"] = .integer(Int64(usage.segments))
        }
        broker.publish(HealthCheck(checkType: "periodic", nodeHealthy: healthy, healthReport: .object(report)))
    }

    /// Whether free space is low: under `limit` percent, or — once low — under a percentage point above it:
    /// free space hovering at the limit would otherwise alert (and start a flush and a cleanup) at every check
    /// that finds it just under.
    static func isLow(percentFree: Double, limit: Double, wasLow: Bool) -> Bool {
        percentFree < (wasLow ? limit + 1 : limit)
    }

    /// Whether `module` counts as healthy for `node_healthy`.
    static func isWhereItShouldBe(_ module: ModuleSupervisor.ModuleStatus) -> Bool {
        switch module.state {
        case .running: (module.health ?? .healthy) == .healthy
        case .stopped, .stopping, .external: true
        case .starting, .restarting, .failed: false
        }
    }

    /// Checks the data directory's file system; `wasLow` says whether the last check was below the limit.
    func checkDisk(wasLow: inout Bool) {
        let path = broker.configuration.dataDirectory
        var stats = statvfs()
        guard statvfs(path, &stats) == 0, stats.f_blocks > 0 else {
            // Said once, not at every check: the monitor is blind until it can read the file system again.
            if !statvfsFailed.value.exchange(true, ordering: .relaxed) {
                broker.logger.warning(
                    "the disk-space monitor cannot read the data directory's file system",
                    metadata: ["disk.path": "\(path)", "error": "\(String(cString: strerror(errno)))"])
            }
            return
        }
        statvfsFailed.value.store(false, ordering: .relaxed)
        let available = Int(stats.f_bavail) * Int(stats.f_frsize)
        let total = Int(stats.f_blocks) * Int(stats.f_frsize)
        let percentFree = Double(available) * 100 / Double(total)
        let low = Self.isLow(
            percentFree: percentFree, limit: Double(broker.configuration.housekeeping.diskLowPercent), wasLow: wasLow)
        defer { wasLow = low }
        guard low, !wasLow else { return }
        broker.logger.warning(
            "disk space is low",
            metadata: [
                "disk.path": "\(path)", "disk.percent_free": "\(percentFree)", "disk.available_bytes": "\(available)",
            ])
        broker.publish(
            ResourceDiskSpaceLow(availableBytes: available, totalBytes: total, percentFree: percentFree, diskPath: path)
        )
        broker.publish(
            MaintenanceData(operation: .both, urgency: .high, reason: .lowDisk, targetAgeDays: 7, timeoutSeconds: 10))
    }
}
