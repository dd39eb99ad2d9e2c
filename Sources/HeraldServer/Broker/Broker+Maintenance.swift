import HeraldCore
import HeraldLog
import Logging

extension Broker {
    /// Acts on an accepted `maintenance.data` (EVENTS.md "Maintenance and resources"), whoever published
    /// it: `flush` syncs the log whatever its fsync policy, `cleanup` applies retention (sealed segments
    /// older than `target_age_days`, when given, as well as those past the configured limits), `both` does
    /// both. The work runs off the publisher's thread, between `maintenance.started` and
    /// `maintenance.completed` (with `success`, `duration_ms` and what was done in `results`). A payload
    /// that does not decode as `maintenance.data`, or whose `target_age_days` is outside 0…36 500 (the range
    /// of `log.retention_days`: a negative age would put the cut-off in the future and delete every sealed
    /// segment, a huge one overflow), is logged and ignored.
    func maintain(_ envelope: EventEnvelope) {
        guard let log else { return }
        let request: MaintenanceData
        do {
            guard let payload = envelope.payload else { throw MaintenanceRequestError.noPayload }
            request = try payload.decode(MaintenanceData.self)
        } catch {
            logger.warning(
                "maintenance.data ignored: its payload is not valid",
                metadata: ["event.id": "\(envelope.eventID)", "error": "\(error)"])
            return
        }
        if let days = request.targetAgeDays, !Self.targetAgeDays.contains(days) {
            logger.warning(
                "maintenance.data ignored: target_age_days must be an integer from 0 to 36500",
                metadata: ["event.id": "\(envelope.eventID)", "target_age_days": "\(days)"])
            return
        }
        let kind = "data.\(request.operation.rawValue)"
        // Recorded under the lock before it can end: its own end removes it under the same lock.
        maintenanceRuns.withLock { runs in
            let number = runs.next
            runs.next += 1
            runs.running[number] = Task { await self.runMaintenance(request, kind: kind, log: log, number: number) }
        }
    }

    /// The `target_age_days` the broker acts on.
    static let targetAgeDays = 0...36_500

    private func runMaintenance(_ request: MaintenanceData, kind: String, log: DurableLog, number: UInt64) async {
        defer { _ = maintenanceRuns.withLock { $0.running.removeValue(forKey: number) } }
        publish(MaintenanceStarted(maintenanceType: kind))
        let started = ContinuousClock.now
        var results: [String: JSONValue] = [:]
        var failure: LogError?
        if request.operation == .flush || request.operation == .both {
            do throws(LogError) {
                try await log.flush()
                results["flushed"] = .bool(true)
            } catch {
                failure = error
            }
        }
        if failure == nil, request.operation == .cleanup || request.operation == .both {
            let now = Self.millisecondsSince1970()
            let olderThan = request.targetAgeDays.map { now - Int64($0) * 86_400_000 }
            do throws(LogError) {
                let deleted = try log.applyRetention(now: now, olderThan: olderThan)
                results["segments_deleted"] = .integer(Int64(deleted.segments))
                results["bytes_deleted"] = .integer(Int64(deleted.bytes))
            } catch {
                failure = error
            }
        }
        if let failure {
            results["error"] = .string("\(failure)")
            logger.error("maintenance failed", metadata: ["maintenance.type": "\(kind)", "error": "\(failure)"])
        } else {
            // One metadata entry per result (`flushed=true segments_deleted=0 …`), not Swift's rendering of the
            // dictionary.
            var metadata: Logger.Metadata = ["maintenance.type": "\(kind)"]
            for (name, value) in results {
                switch value {
                case .bool(let flag): metadata[name] = "\(flag)"
                case .integer(let number): metadata[name] = "\(number)"
                case .string(let text): metadata[name] = "\(text)"
                default: metadata[name] = "\(value)"
                }
            }
            logger.info("maintenance done", metadata: metadata)
        }
        let elapsed = ContinuousClock.now - started
        publish(
            MaintenanceCompleted(
                maintenanceType: kind, success: failure == nil,
                durationMs: Int(elapsed.wholeMilliseconds),
                results: .object(results)))
    }
}

private enum MaintenanceRequestError: Error, CustomStringConvertible {
    case noPayload

    var description: String { "payload: missing" }
}
