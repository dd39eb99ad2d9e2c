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
    ///
    /// One run at a time: what is asked while one runs is merged into one run after it (``MaintenanceQueue``),
    /// so that a publisher sending `maintenance.data` in a loop costs a flush and a cleanup at a time, not a
    /// task and a flush per event.
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
        maintenanceQueue.withLock { queue in
            queue.requests += 1
            guard queue.running == nil else {
                queue.queued = queue.queued.map { $0.merged(with: request) } ?? request
                return
            }
            // Recorded under the lock before it can end: its end clears it under the same lock.
            queue.running = Task { await self.runMaintenance(from: request, log: log) }
        }
    }

    /// The `target_age_days` the broker acts on.
    static let targetAgeDays = 0...36_500

    /// Runs `first`, then what was queued meanwhile, until nothing is.
    private func runMaintenance(from first: MaintenanceData, log: DurableLog) async {
        var next: MaintenanceData? = first
        while let request = next {
            await runMaintenance(request, log: log)
            next = maintenanceQueue.withLock { queue in
                defer { queue.queued = nil }
                if queue.queued == nil { queue.running = nil }
                return queue.queued
            }
        }
    }

    private func runMaintenance(_ request: MaintenanceData, log: DurableLog) async {
        let kind = "data.\(request.operation.rawValue)"
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

/// The broker's `maintenance.data` work: the run under way, and the requests that came meanwhile, merged into
/// the one run that follows it.
struct MaintenanceQueue {
    var running: Task<Void, Never>?
    var queued: MaintenanceData?
    /// The requests acted on since the start.
    var requests = 0
}

extension MaintenanceData {
    /// One request that does what both do: a flush if either flushes, a cleanup if either cleans up, down to
    /// the younger of the ages their cleanups give (a flush's `target_age_days` means nothing, and must not
    /// become a cleanup's).
    func merged(with other: MaintenanceData) -> MaintenanceData {
        let flushes = [operation, other.operation].contains { $0 == .flush || $0 == .both }
        let cleansUp = [operation, other.operation].contains { $0 == .cleanup || $0 == .both }
        var merged = other
        merged.operation = flushes && cleansUp ? .both : flushes ? .flush : .cleanup
        merged.targetAgeDays = [self, other].filter { $0.operation != .flush }.compactMap(\.targetAgeDays).min()
        return merged
    }
}

private enum MaintenanceRequestError: Error, CustomStringConvertible {
    case noPayload

    var description: String { "payload: missing" }
}
