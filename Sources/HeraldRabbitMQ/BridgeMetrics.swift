import Metrics

/// The bridge's metrics (docs/operations.md); its lag is the `rabbitmq-bridge` group's
/// (`herald_group_lag_events`).
struct BridgeMetrics: Sendable {
    /// Events RabbitMQ confirmed.
    let published = Counter(label: "herald_bridge_published_total")

    /// A message taken from a consumed queue, by what became of it: `stored`, `duplicate`, `own` (it
    /// came from this broker), `invalid` (rejected).
    func received(_ outcome: String) {
        Counter(label: "herald_bridge_received_total", dimensions: [("outcome", outcome)]).increment()
    }

    /// Whether the connection of `direction` (`outbound`, `inbound`) is up.
    func connected(_ direction: String, _ up: Bool) {
        Gauge(label: "herald_bridge_connected", dimensions: [("direction", direction)]).record(up ? 1 : 0)
    }

    /// A failed connection or connection attempt of `direction`.
    func reconnect(_ direction: String) {
        Counter(label: "herald_bridge_connection_failures_total", dimensions: [("direction", direction)]).increment()
    }

    /// Publishes waiting for RabbitMQ's confirm.
    func inFlight(_ count: Int) {
        Gauge(label: "herald_bridge_in_flight").record(count)
    }
}
