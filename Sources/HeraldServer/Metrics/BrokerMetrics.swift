import HeraldCore
import Metrics
import Synchronization

/// The broker's metrics (docs/operations.md), reported through swift-metrics to whatever backend the
/// process bootstrapped (`herald serve`: Prometheus, served at `GET /metrics`).
///
/// Counted where they happen: events published, stored and refused as duplicates. Read from the broker's
/// state just before each scrape (``refresh(_:)``): deliveries and drops per module (from the bus's
/// statistics), connections by kind, subscriptions, group lag and dead letters, the log's size. The log
/// times its own fsyncs (`herald_log_fsync_duration_seconds`).
final class BrokerMetrics: Sendable {
    /// Kinds of client connection, the `kind` label of `herald_connections`.
    enum ConnectionKind: String, CaseIterable {
        case ipc, tcp, websocket
    }

    let published = Counter(label: "herald_events_published_total")
    let stored = Counter(label: "herald_events_stored_total")
    let duplicates = Counter(label: "herald_events_duplicates_total")
    /// From an event's acceptance to the write of a live delivery of it to the subscriber's socket: one
    /// observation per write, the oldest event it carried (``DeliveryPump``).
    let deliveryLatency = Timer(label: "herald_delivery_latency_seconds")

    /// From an event's acceptance (the record's timestamp, milliseconds of the wall clock) to the write of
    /// its first delivery to a member of `group`: one observation per write, the oldest first delivery it
    /// carried (``GroupDeliveryPump``). Kafka's end-to-end latency: events read from far back count their age.
    func groupDeliveryLatency(group: String) -> Timer {
        Timer(label: "herald_group_delivery_latency_seconds", dimensions: [("group", group)])
    }
    private let ipc = Atomic<Int>(0)
    private let tcp = Atomic<Int>(0)
    private let websocket = Atomic<Int>(0)
    /// The statistics last reported per module, so that counters grow by what happened since.
    private let reported = Mutex<[String: DeliveryStatistics]>([:])

    /// A connection of `kind` opened (`+1`) or closed (`-1`).
    func connection(_ kind: ConnectionKind, _ change: Int) {
        switch kind {
        case .ipc: ipc.add(change, ordering: .relaxed)
        case .tcp: tcp.add(change, ordering: .relaxed)
        case .websocket: websocket.add(change, ordering: .relaxed)
        }
    }

    /// Open connections of `kind`.
    func connections(_ kind: ConnectionKind) -> Int {
        switch kind {
        case .ipc: ipc.load(ordering: .relaxed)
        case .tcp: tcp.load(ordering: .relaxed)
        case .websocket: websocket.load(ordering: .relaxed)
        }
    }

    /// Brings every metric read from state up to date; called before each scrape.
    func refresh(_ broker: Broker) {
        for kind in ConnectionKind.allCases {
            Gauge(label: "herald_connections", dimensions: [("kind", kind.rawValue)]).record(connections(kind))
        }
        Gauge(label: "herald_subscriptions").record(broker.bus.subscriptionCount)
        reportDeliveries(broker.bus.allDeliveryTotals())
        if let log = broker.log {
            let usage = log.usage
            Gauge(label: "herald_log_bytes").record(usage.bytes)
            Gauge(label: "herald_log_segments").record(usage.segments)
        }
        // Not a group deleted since `all` was read: its series were removed, and would come back.
        for group in broker.groups?.all ?? [] where !group.isRetired {
            for lag in group.lag() {
                let dimensions = [("group", group.name), ("partition", String(lag.partition))]
                Gauge(label: "herald_group_lag_events", dimensions: dimensions).record(lag.lag)
                Gauge(label: "herald_group_lag_seconds", dimensions: dimensions)
                    .record(Double(lag.oldestUnackedAgeMs ?? 0) / 1000)
            }
            Gauge(label: "herald_group_dead_letters", dimensions: [("group", group.name)])
                .record(group.deadLetterCount)
            Gauge(label: "herald_group_members", dimensions: [("group", group.name)]).record(group.memberCount)
        }
    }

    /// Removes the series of a deleted group, which would otherwise keep their last values.
    func forgetGroup(_ name: String, partitions: Int) {
        for partition in 0..<partitions {
            let dimensions = [("group", name), ("partition", String(partition))]
            Gauge(label: "herald_group_lag_events", dimensions: dimensions).destroy()
            Gauge(label: "herald_group_lag_seconds", dimensions: dimensions).destroy()
        }
        Gauge(label: "herald_group_dead_letters", dimensions: [("group", name)]).destroy()
        Gauge(label: "herald_group_members", dimensions: [("group", name)]).destroy()
        groupDeliveryLatency(group: name).destroy()
    }

    /// Counters of deliveries and drops per module grow by what the totals gained since the last scrape. The
    /// totals ignore resets of the statistics through the API, so nothing counted between a scrape and a
    /// reset is lost and the counters never go back.
    ///
    /// A name the bus forgot (past ``EventBus/statisticsLimit``) leaves the metrics too, its series removed;
    /// one that comes back starts again from zero, as a new series.
    func reportDeliveries(_ statistics: [String: DeliveryStatistics]) {
        let (changes, forgotten) = reported.withLock { reported in
            let forgotten = reported.keys.filter { statistics[$0] == nil }
            for module in forgotten { reported.removeValue(forKey: module) }
            var changes: [(String, DeliveryStatistics)] = []
            for (module, now) in statistics {
                let before = reported[module] ?? DeliveryStatistics()
                // Totals never go back while the bus keeps a name; should one ever, it counts from zero again.
                func gained(_ now: UInt64, _ before: UInt64) -> UInt64 { now >= before ? now - before : now }
                changes.append(
                    (
                        module,
                        DeliveryStatistics(
                            successful: gained(now.successful, before.successful),
                            failed: gained(now.failed, before.failed),
                            channelFull: gained(now.channelFull, before.channelFull))
                    ))
                reported[module] = now
            }
            return (changes, forgotten)
        }
        for module in forgotten {
            Counter(label: "herald_events_delivered_total", dimensions: [("module", module)]).destroy()
            for reason in ["channel_full", "failed"] {
                Counter(label: "herald_events_dropped_total", dimensions: [("module", module), ("reason", reason)])
                    .destroy()
            }
        }
        for (module, gained) in changes {
            Counter(label: "herald_events_delivered_total", dimensions: [("module", module)])
                .increment(by: Int64(clamping: gained.successful))
            Counter(label: "herald_events_dropped_total", dimensions: [("module", module), ("reason", "channel_full")])
                .increment(by: Int64(clamping: gained.channelFull))
            Counter(label: "herald_events_dropped_total", dimensions: [("module", module), ("reason", "failed")])
                .increment(by: Int64(clamping: gained.failed))
        }
    }
}
