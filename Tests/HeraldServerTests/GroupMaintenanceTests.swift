import Foundation
import HeraldCore
import HeraldLog
import Testing

@testable import HeraldServer

/// Lag alerts (PROTOCOL.md §4.2) and `maintenance.data` (EVENTS.md).
@Suite(.timeLimit(.minutes(3)))
struct GroupMaintenanceTests {
    @Test func aLaggingGroupIsReportedOncePerCrossing() async throws {
        let broker = try await TestBroker.start(durable: true, lagMonitor: false) {
            $0.log.persist = ["tx"]
            $0.log.partitions = 1
            $0.groups.lagAlertEvents = 2
        }
        let monitor = GroupLagMonitor(broker: broker.broker)
        var alerted: Set<String> = []
        let warnings = try broker.broker.bus.subscribe(["resource.limit_warning"], buffer: 10)
        var received = warnings.makeAsyncIterator()
        try await broker.withModule("worker") { (worker: inout Conversation) async throws in
            #expect(
                try await worker.request(
                    #"{"op":"subscribe","id":1,"topics":["tx"],"group":"slow","max_in_flight":1}"#)
                    == #"{"op":"ok","id":1,"subscription":2}"#)
            try await DurableSubscriptionTests.publish(["a", "b"], to: broker)
            monitor.check(alerted: &alerted)
            #expect(alerted.isEmpty)
            try await DurableSubscriptionTests.publish(["c"], to: broker)
            monitor.check(alerted: &alerted)
            monitor.check(alerted: &alerted)
            #expect(alerted == ["slow/0"])
            let warning = try #require(await received.next())
            #expect(warning.payload?.description.contains(#""resource_type":"consumer_lag""#) == true)
            #expect(warning.payload?.description.contains(#""current_usage":3,"limit":2"#) == true)
            #expect(warning.metadata["group"] == "slow")
            #expect(warning.metadata["partition"] == "0")
            #expect(warning.metadata["lag_events"] == "3")
            // The member catches up, one event at a time (max_in_flight 1).
            for seq in 1...3 {
                _ = try await DurableSubscriptionTests.nextEvent(&worker, subscription: 2)
                try await worker.send(#"{"op":"ack","subscription":2,"seq":[\#(seq)]}"#)
            }
            // Requests are handled in order: once this is answered, so are the acks.
            #expect(try await worker.request(#"{"op":"ping","id":9}"#) == #"{"op":"pong","id":9}"#)
            monitor.check(alerted: &alerted)
            #expect(alerted.isEmpty)
            try await DurableSubscriptionTests.publish(["d", "e", "f", "g"], to: broker)
            monitor.check(alerted: &alerted)
            // The next warning is this crossing's (4 behind): the checks while over the limit sent nothing.
            let again = try #require(await received.next())
            #expect(again.metadata["lag_events"] == "4")
        }
        try await broker.stop()
    }

    /// The partitions of a group that no longer exists (deleted) are forgotten, so that a new group of the
    /// same name alerts when it lags.
    @Test func aDeletedGroupsAlertsAreForgotten() async throws {
        let broker = try await TestBroker.start(durable: true, lagMonitor: false)
        var alerted: Set<String> = ["gone/0", "gone/3"]
        GroupLagMonitor(broker: broker.broker).check(alerted: &alerted)
        #expect(alerted.isEmpty)
        try await broker.stop()
    }

    /// A lag hovering at the limit alerts once: the alert is re-armed only below nine tenths of it.
    @Test func aLagHoveringAtTheLimitAlertsOnce() async throws {
        let broker = try await TestBroker.start(durable: true, lagMonitor: false) {
            $0.log.persist = ["tx"]
            $0.log.partitions = 1
            $0.groups.lagAlertEvents = 10
        }
        let monitor = GroupLagMonitor(broker: broker.broker)
        var alerted: Set<String> = []
        try await broker.withModule("worker") { (worker: inout Conversation) async throws in
            #expect(
                try await worker.request(#"{"op":"subscribe","id":1,"topics":["tx"],"group":"hover"}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            try await DurableSubscriptionTests.publish((0..<11).map { "h\($0)" }, to: broker)
            var seqs: [Int] = []
            for _ in 0..<11 { seqs.append(try await DurableSubscriptionTests.nextEvent(&worker, subscription: 1).seq) }
            func ack(_ count: Int) async throws {
                let taken = seqs.prefix(count)
                seqs.removeFirst(count)
                #expect(
                    try await worker.request(#"{"op":"ack","id":5,"subscription":1,"seq":\#(Array(taken))}"#)
                        == #"{"op":"ok","id":5}"#)
            }
            monitor.check(alerted: &alerted)
            #expect(alerted == ["hover/0"])
            // 10 behind (at the limit, not over it), then 11 again: still the same crossing.
            try await ack(1)
            monitor.check(alerted: &alerted)
            #expect(alerted == ["hover/0"])
            try await DurableSubscriptionTests.publish(["h11"], to: broker)
            _ = try await DurableSubscriptionTests.nextEvent(&worker, subscription: 1)
            monitor.check(alerted: &alerted)
            #expect(alerted == ["hover/0"])
            // 9 behind: nine tenths, re-armed.
            try await ack(2)
            monitor.check(alerted: &alerted)
            #expect(alerted.isEmpty)
        }
        try await broker.stop()
    }

    /// A `target_age_days` out of range is ignored: negative, it put the cut-off in the future (every sealed
    /// segment deleted); huge, its conversion to milliseconds overflowed and stopped the broker.
    @Test func maintenanceDataWithATargetAgeOutOfRangeIsIgnored() async throws {
        let broker = try await TestBroker.start(durable: true)
        try await broker.withModule("operator") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["maintenance.*"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            for days in ["-1", "9223372036854775807", "36501", "7"] {
                try await client.send(
                    #"{"op":"publish","event":{"event_type":"maintenance.data","payload":{"operation":"cleanup","urgency":"low","reason":"manual","target_age_days":\#(days)}}}"#
                )
            }
            var frames: [String] = []
            while frames.count < 6 { frames.append(try #require(try await client.receive())) }
            let types = try frames.map { String(try #require($0.firstMatch(of: /"event_type":"([a-z.]+)"/)).1) }
            // The four events are delivered; only the last is acted on.
            #expect(types.filter { $0 == "maintenance.data" }.count == 4)
            #expect(types.filter { $0 == "maintenance.started" }.count == 1)
            #expect(types.filter { $0 == "maintenance.completed" }.count == 1)
            #expect(frames.last?.contains(#""success":true"#) == true)
            #expect(try await client.request(#"{"op":"ping","id":2}"#) == #"{"op":"pong","id":2}"#)
        }
        try await broker.stop()
    }

    @Test func maintenanceDataFlushesTheLogBetweenStartedAndCompleted() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.fsync = .never }
        try await broker.withModule("operator") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["maintenance.*"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            try await client.send(
                #"{"op":"publish","event":{"event_type":"maintenance.data","payload":{"operation":"both","urgency":"high","reason":"manual","target_age_days":30}}}"#
            )
            var types: [String] = []
            var completed = ""
            while types.count < 3 {
                let frame = try #require(try await client.receive())
                let type = try #require(frame.firstMatch(of: /"event_type":"([a-z.]+)"/)).1
                types.append(String(type))
                if type == "maintenance.completed" { completed = frame }
            }
            #expect(types == ["maintenance.data", "maintenance.started", "maintenance.completed"])
            #expect(completed.contains(#""maintenance_type":"data.both""#))
            #expect(completed.contains(#""success":true"#))
            #expect(completed.contains(#""flushed":true"#))
            #expect(completed.contains(#""segments_deleted":0"#))
            #expect(completed.contains(#""producer":"herald""#))
        }
        try await broker.stop()
    }

    /// `maintenance.data` sent in a loop runs one flush at a time: what comes while one runs is merged into
    /// the next run. Before, every event started a task of its own, all flushing at once.
    @Test func maintenanceDataInALoopRunsOneAtATime() async throws {
        let broker = try await TestBroker.start(durable: true)
        let requests = 40
        try await broker.withModule("operator") { (client: inout Conversation) async throws in
            #expect(
                try await client.request(#"{"op":"subscribe","id":1,"topics":["maintenance.*","test.end"]}"#)
                    == #"{"op":"ok","id":1,"subscription":1}"#)
            // In one write, so that they arrive while the first run is under way.
            let request = Array(
                #"{"op":"publish","event":{"event_type":"maintenance.data","payload":{"operation":"flush","urgency":"low","reason":"manual"}}}"#
                    .utf8)
            try await client.sendRaw((0..<requests).flatMap { _ in lengthPrefixed(request) })
            try await waitUntil {
                broker.broker.maintenanceQueue.withLock { $0.requests == requests && $0.running == nil }
            }
            // Published after the last run's `maintenance.completed`: delivered after it.
            try await client.send(#"{"op":"publish","event":{"event_type":"test.end"}}"#)
            var types: [String] = []
            while types.last != "test.end" {
                let frame = try #require(try await client.receive())
                types.append(String(try #require(frame.firstMatch(of: /"event_type":"([a-z.]+)"/)).1))
            }
            let runs = types.filter { $0 == "maintenance.started" }.count
            #expect(types.filter { $0 == "maintenance.data" }.count == requests)
            #expect(types.filter { $0 == "maintenance.completed" }.count == runs)
            #expect(runs >= 1 && runs < requests / 2, "\(runs) runs for \(requests) requests")
        }
        try await broker.stop()
    }
}

/// Merging `maintenance.data` requests that wait for the same run.
@Suite struct MaintenanceMergeTests {
    private func request(_ operation: MaintenanceOperation, _ days: Int?) -> MaintenanceData {
        MaintenanceData(operation: operation, urgency: .low, reason: .manual, targetAgeDays: days)
    }

    @Test func aMergedRequestDoesWhatBothDo() {
        #expect(request(.flush, nil).merged(with: request(.flush, nil)).operation == .flush)
        #expect(request(.flush, nil).merged(with: request(.cleanup, nil)).operation == .both)
        #expect(request(.cleanup, 3).merged(with: request(.cleanup, nil)).operation == .cleanup)
        #expect(request(.both, nil).merged(with: request(.flush, nil)).operation == .both)
        #expect(request(.cleanup, 30).merged(with: request(.cleanup, 7)).targetAgeDays == 7)
        #expect(request(.cleanup, 3).merged(with: request(.cleanup, nil)).targetAgeDays == 3)
        #expect(request(.flush, nil).merged(with: request(.flush, nil)).targetAgeDays == nil)
        // A flush's age is not a cleanup's: merged with one, it would have deleted every sealed segment.
        let flushWithAge = request(.flush, 0)
        #expect(flushWithAge.merged(with: request(.cleanup, 7)).targetAgeDays == 7)
        #expect(request(.cleanup, nil).merged(with: flushWithAge).targetAgeDays == nil)
        #expect(request(.cleanup, nil).merged(with: flushWithAge).operation == .both)
    }
}
