import Foundation
import HeraldCore
import Testing

@testable import HeraldServer

/// The broker's periodic work: cleanup requests, health checks and the disk-space monitor.
@Suite(.timeLimit(.minutes(3)))
struct HousekeepingTests {
    private func event(_ frame: String?) throws -> (type: String, payload: [String: Any]) {
        let object = try #require(try JSONSerialization.jsonObject(with: Data((frame ?? "").utf8)) as? [String: Any])
        let event = try #require(object["event"] as? [String: Any])
        return (event["event_type"] as? String ?? "", event["payload"] as? [String: Any] ?? [:])
    }

    @Test func eachTaskPublishesWhatItShouldAndLowDiskOncePerCrossing() async throws {
        // 100 %: any disk is "low", so the monitor has something to say.
        let broker = try await TestBroker.start { $0.housekeeping.diskLowPercent = 100 }
        let housekeeping = Housekeeping(broker: broker.broker)
        try await broker.withModule("watcher") { watcher in
            _ = try await watcher.request(
                #"{"op":"subscribe","id":1,"topics":["resource.#","maintenance.data","health.check"]}"#)
            var low = false
            housekeeping.checkDisk(wasLow: &low)
            #expect(low)
            let disk = try event(try await watcher.receive())
            #expect(disk.type == "resource.disk_space_low")
            #expect(disk.payload["disk_path"] as? String == broker.directory)
            #expect((disk.payload["total_bytes"] as? Int ?? 0) > 0)
            #expect(disk.payload["percent_free"] is Double)
            let both = try event(try await watcher.receive())
            #expect(both.type == "maintenance.data")
            #expect(both.payload["operation"] as? String == "both")
            #expect(both.payload["reason"] as? String == "low_disk")
            #expect(both.payload["urgency"] as? String == "high")
            // Still low: nothing new until it has been above the limit again.
            housekeeping.checkDisk(wasLow: &low)
            housekeeping.cleanup()
            let cleanup = try event(try await watcher.receive())
            #expect(cleanup.type == "maintenance.data")
            #expect(cleanup.payload["operation"] as? String == "cleanup")
            #expect(cleanup.payload["reason"] as? String == "periodic")
            #expect(cleanup.payload["target_age_days"] as? Int == 7)
            housekeeping.checkHealth()
            let health = try event(try await watcher.receive())
            #expect(health.type == "health.check")
            #expect(health.payload["check_type"] as? String == "periodic")
            // Not ready: this test broker never completed its startup.
            #expect(health.payload["node_healthy"] as? Bool == false)
        }
        try await broker.stop()
    }

    /// `node_healthy`'s rule per module: a module stopped on purpose (unloaded, or exited cleanly and not
    /// restarted) leaves the node healthy; one failed, on its way up, or running unhealthy does not. Before,
    /// every state but `running` and `external` made the node unhealthy.
    @Test(arguments: [
        (ModuleState.running, ModuleHealth?.some(.healthy), true),
        (.running, nil, true),
        (.running, .degraded, false),
        (.running, .unhealthy, false),
        (.stopped, nil, true),
        (.stopping, nil, true),
        (.external, .degraded, true),
        (.starting, nil, false),
        (.restarting, nil, false),
        (.failed, nil, false),
    ])
    func aModuleCountsForTheNodesHealthByItsState(state: ModuleState, health: ModuleHealth?, counts: Bool) {
        let status = ModuleSupervisor.ModuleStatus(
            name: "m", version: "1", state: state, health: health, pid: nil, restarts: 0, loadedAt: nil,
            connections: 0, problem: nil)
        #expect(Housekeeping.isWhereItShouldBe(status) == counts)
    }

    /// Low disk space with hysteresis: low under the limit; once low, low until a percentage point above it.
    @Test func lowDiskSpaceReArmsAPointAboveTheLimit() {
        #expect(Housekeeping.isLow(percentFree: 9.9, limit: 10, wasLow: false))
        #expect(!Housekeeping.isLow(percentFree: 10.0, limit: 10, wasLow: false))
        #expect(Housekeeping.isLow(percentFree: 10.5, limit: 10, wasLow: true))
        #expect(!Housekeeping.isLow(percentFree: 11.0, limit: 10, wasLow: true))
    }

    /// A data directory the monitor cannot read is said once, in a warning, not at every check.
    @Test func anUnreadableFileSystemIsSaidOnce() {
        let records = RecordingLogHandler.Records()
        var configuration = HeraldConfiguration()
        configuration.dataDirectory = NSTemporaryDirectory() + "herald-missing-\(UUID().uuidString)"
        let broker = Broker(configuration: configuration, logger: RecordingLogHandler.logger(records))
        let housekeeping = Housekeeping(broker: broker)
        var low = false
        housekeeping.checkDisk(wasLow: &low)
        housekeeping.checkDisk(wasLow: &low)
        #expect(!low)
        #expect(records.all.filter { $0.contains("cannot read the data directory's file system") }.count == 1)
    }
}
