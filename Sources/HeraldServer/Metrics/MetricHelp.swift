/// The `# HELP` line of every metric the broker reports (docs/operations.md has the long form).
///
/// swift-metrics has no place for a description and swift-prometheus refuses two help texts for one name,
/// so the exposition gets its help here, inserted before each family's `# TYPE` line when `/metrics` is
/// served. A name missing from the table keeps only its `# TYPE` line (a test checks there is none).
enum MetricHelp {
    static let texts: [String: String] = [
        "herald_events_published_total": "Events accepted from any source, duplicates excluded.",
        "herald_events_stored_total": "Events appended to the durable log.",
        "herald_events_duplicates_total": "Publishes refused as repeats of an event_id within the dedup window.",
        "herald_events_delivered_total": "Events written to a live subscriber, per module.",
        "herald_events_dropped_total": "Live events not delivered, per module and reason (channel_full, failed).",
        "herald_connections": "Open client connections by kind.",
        "herald_subscriptions": "Open live subscriptions.",
        "herald_group_lag_events": "Events between a group's committed offset and the head of the partition.",
        "herald_group_lag_seconds": "Age of the oldest event a group has not acknowledged, per partition.",
        "herald_group_members": "Members (durable subscriptions) of a consumer group.",
        "herald_group_dead_letters": "Dead letters kept for a consumer group.",
        "herald_log_bytes": "Bytes of records in the durable log's segments.",
        "herald_log_segments": "Segment files of the durable log.",
        "herald_log_fsync_duration_seconds": "Duration of each group commit's sync of the durable log.",
        "herald_delivery_latency_seconds":
            "Acceptance to written delivery of live subscriptions, the oldest event of each write.",
        "herald_group_delivery_latency_seconds":
            "Acceptance to written first delivery to a group member, the oldest event of each write.",
        "herald_http_requests_total": "HTTP requests answered, by method, route, status and token.",
        "herald_http_request_duration_seconds": "HTTP request duration from routing to response.",
        "herald_bridge_published_total": "Events RabbitMQ confirmed to the bridge.",
        "herald_bridge_received_total": "Messages taken from the bridge's consumed queues, by outcome.",
        "herald_bridge_connected": "1 while that side's connection to RabbitMQ is up.",
        "herald_bridge_connection_failures_total": "Lost connections to RabbitMQ and failed connection attempts.",
        "herald_bridge_in_flight": "Bridge publishes waiting for RabbitMQ's confirm.",
    ]

    /// `exposition` with a `# HELP` line before each `# TYPE` line whose metric the table describes, unless the
    /// family already has one.
    static func adding(to exposition: String) -> String {
        var result = ""
        result.reserveCapacity(exposition.utf8.count + texts.count * 80)
        var previous: Substring = ""
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), !previous.hasPrefix("# HELP ") {
                let name = line.dropFirst(7).prefix { $0 != " " }
                if let text = texts[String(name)] { result += "# HELP \(name) \(text)\n" }
            }
            result += line
            result += "\n"
            previous = line
        }
        result.removeLast()  // each line got a newline, the last one too: the exposition's own ends are kept
        return result
    }
}
