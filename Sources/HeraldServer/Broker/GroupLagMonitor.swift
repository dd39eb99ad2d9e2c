import HeraldCore
import HeraldLog
import ServiceLifecycle

/// Watches every consumer group's lag (PROTOCOL.md §4.2): once a partition of a group is more than
/// `groups.lag_alert_events` events behind the log's head, or its oldest unacknowledged event is older than
/// `groups.lag_alert_ms`, it logs a warning and publishes `resource.limit_warning` with `resource_type:
/// "consumer_lag"` — once per crossing: again only after the partition fell below nine tenths of both limits.
public struct GroupLagMonitor: Service {
    let broker: Broker
    let interval: Duration

    public init(broker: Broker, interval: Duration = .seconds(1)) {
        self.broker = broker
        self.interval = interval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var alerted: Set<String> = []
            while !Task.isCancelled {
                check(alerted: &alerted)
                do {
                    try await Task.sleep(for: interval)
                } catch {
                    return
                }
            }
        }
    }

    /// One round: alerts for partitions that crossed a limit since the last round (`alerted` holds those
    /// above one, as `group/partition`).
    func check(alerted: inout Set<String>) {
        guard let groups = broker.groups else { return }
        let limits = broker.configuration.groups
        let all = groups.all
        // A deleted group's partitions are forgotten: a new group of that name alerts as any new one.
        let names = Set(all.map(\.name))
        alerted = alerted.filter { names.contains(String($0.prefix { $0 != "/" })) }
        for group in all {
            for lag in group.lag() {
                let key = "\(group.name)/\(lag.partition)"
                let age = lag.oldestUnackedAgeMs ?? 0
                let byEvents = lag.lag > Int64(limits.lagAlertEvents)
                guard byEvents || age > Int64(limits.lagAlertMs) else {
                    // Re-armed once clearly back, below nine tenths of both limits: a lag hovering at a
                    // limit would otherwise alert at every check that finds it just over.
                    if lag.lag * 10 <= Int64(limits.lagAlertEvents) * 9 && age * 10 <= Int64(limits.lagAlertMs) * 9 {
                        alerted.remove(key)
                    }
                    continue
                }
                guard alerted.insert(key).inserted else { continue }
                let current = byEvents ? Int(lag.lag) : Int(age)
                let limit = byEvents ? limits.lagAlertEvents : limits.lagAlertMs
                let details = [
                    "group": group.name, "partition": String(lag.partition), "lag_events": String(lag.lag),
                    "lag_ms": String(age),
                ]
                broker.logger.warning(
                    "a consumer group is lagging",
                    metadata: details.mapValues { .string($0) })
                broker.publish(
                    ResourceLimitWarning(
                        resourceType: "consumer_lag", usagePercent: Double(current) * 100 / Double(limit),
                        currentUsage: current, limit: limit, thresholdPercent: 100),
                    metadata: details)
            }
        }
    }
}
