// The payload schema of every catalog event, written from the same table as the catalog's types; a test
// (EventCatalogTests) checks that each schema and its Swift type agree on every field.

extension EventCatalog {
    /// What `validate_payloads` checks for each catalog event type.
    static let schemas: [String: PayloadSchema] = [
        "block.new": PayloadSchema(fields: [
            .required("hash", .string),
            .required("block_number", .integer),
            .optional("timestamp", .string),
            .optional("transaction_count", .integer),
        ]),
        "block.disconnected": PayloadSchema(fields: [
            .required("hash", .hash),
            .required("height", .integer),
        ]),
        "chain.reorg": PayloadSchema(fields: [
            .required("old_tip", .hash),
            .required("new_tip", .hash),
        ]),
        "transaction.pending": PayloadSchema(fields: [
            .required("hash", .string),
            .optional("from_address", .string),
            .optional("to_address", .string),
            .optional("fee_rate", .number),
        ]),
        "transaction.confirmed": PayloadSchema(fields: [
            .required("hash", .string),
            .required("block_number", .integer),
            .required("from_address", .string),
            .required("to_address", .string),
            .required("status", .oneOf(["success", "failed"])),
        ]),
        "token.transfer": PayloadSchema(fields: [
            .required("token_address", .string),
            .required("from_address", .string),
            .required("to_address", .string),
            .required("amount", .decimal),
            .required("transaction_hash", .string),
        ]),
        "contract.verified": PayloadSchema(fields: [
            .required("address", .string),
            .required("verification_status", .string),
            .required("verified_at", .string),
        ]),
        "chain.sync": PayloadSchema(fields: [
            .required("network", .string),
            .required("syncing", .boolean),
            .required("progress", .number),
            .required("peers", .integer),
            .required("blockHeight", .integer),
        ]),
        "governance.proposal_created": PayloadSchema(fields: [
            .required("proposal_id", .string),
            .required("repository", .string),
            .required("pr_number", .integer),
            .required("tier", .string),
        ]),
        "governance.proposal_voted": PayloadSchema(fields: [
            .required("proposal_id", .string),
            .required("voter", .string),
            .required("vote", .string),
        ]),
        "governance.proposal_merged": PayloadSchema(fields: [
            .required("proposal_id", .string),
            .required("repository", .string),
            .required("pr_number", .integer),
        ]),
        "governance.fork_detected": PayloadSchema(fields: [
            .required("fork_id", .string),
            .required("ruleset_version", .string),
            .required("adoption_count", .integer),
        ]),
        "peer.connected": PayloadSchema(fields: [
            .required("peer_addr", .string),
            .required("transport_type", .string),
            .required("services", .integer),
            .required("version", .integer),
        ]),
        "peer.disconnected": PayloadSchema(fields: [
            .required("peer_addr", .string),
            .required("reason", .string),
        ]),
        "peer.banned": PayloadSchema(fields: [
            .required("peer_addr", .string),
            .required("reason", .string),
            .required("ban_duration_seconds", .integer),
        ]),
        "network.message_received": PayloadSchema(fields: [
            .required("peer_addr", .string),
            .required("message_type", .string),
            .required("message_size", .integer),
            .required("protocol_version", .integer),
        ]),
        "network.broadcast_started": PayloadSchema(fields: [
            .required("message_type", .string),
            .required("target_peers", .integer),
        ]),
        "network.broadcast_completed": PayloadSchema(fields: [
            .required("message_type", .string),
            .required("successful", .integer),
            .required("failed", .integer),
        ]),
        "module.loaded": PayloadSchema(fields: [
            .required("module_name", .string),
            .required("version", .string),
        ]),
        "module.unloaded": PayloadSchema(fields: [
            .required("module_name", .string),
            .required("version", .string),
            .required("reason", .oneOf(["bye", "disconnected", "stopped", "crashed"])),
        ]),
        "module.reloaded": PayloadSchema(fields: [
            .required("module_name", .string),
            .required("old_version", .string),
            .required("new_version", .string),
        ]),
        "module.crashed": PayloadSchema(fields: [
            .required("module_name", .string),
            .required("error", .string),
        ]),
        "module.health_changed": PayloadSchema(fields: [
            .required("module_name", .string),
            .required("old_health", .oneOf(["healthy", "degraded", "unhealthy"])),
            .required("new_health", .oneOf(["healthy", "degraded", "unhealthy"])),
        ]),
        "node.startup_completed": PayloadSchema(fields: [
            .required("duration_ms", .integer),
            .required("components", .array(.string)),
        ]),
        "node.shutdown": PayloadSchema(fields: [
            .required("reason", .string),
            .required("timeout_seconds", .integer),
        ]),
        "node.shutdown_completed": PayloadSchema(fields: [
            .required("duration_ms", .integer)
        ]),
        "config.loaded": PayloadSchema(fields: [
            .required("changed_sections", .array(.string)),
            .optional("config_json", .string),
        ]),
        "maintenance.data": PayloadSchema(fields: [
            .required("operation", .oneOf(["flush", "cleanup", "both"])),
            .required("urgency", .oneOf(["low", "medium", "high"])),
            .required("reason", .oneOf(["periodic", "shutdown", "low_disk", "manual"])),
            .optional("target_age_days", .integer),
            .optional("timeout_seconds", .integer),
        ]),
        "maintenance.started": PayloadSchema(fields: [
            .required("maintenance_type", .string),
            .optional("estimated_duration_seconds", .integer),
        ]),
        "maintenance.completed": PayloadSchema(fields: [
            .required("maintenance_type", .string),
            .required("success", .boolean),
            .required("duration_ms", .integer),
            .optional("results", .any),
        ]),
        "health.check": PayloadSchema(fields: [
            .required("check_type", .string),
            .required("node_healthy", .boolean),
            .optional("health_report", .any),
        ]),
        "resource.disk_space_low": PayloadSchema(fields: [
            .required("available_bytes", .integer),
            .required("total_bytes", .integer),
            .required("percent_free", .number),
            .required("disk_path", .string),
        ]),
        "resource.limit_warning": PayloadSchema(fields: [
            .required("resource_type", .string),
            .required("usage_percent", .number),
            .required("current_usage", .integer),
            .required("limit", .integer),
            .required("threshold_percent", .number),
        ]),
        "notification": PayloadSchema(fields: [
            .required("id", .string),
            .required("type", .oneOf(["info", "success", "warning", "error"])),
            .required("title", .string),
            .required("body", .string),
            .required("timestamp", .integer),
            .optional("actions", .array(.object)),
        ]),
        "package.install": packageChange,
        "package.update": packageChange,
        "package.remove": packageChange,
        "system.restart": systemChange,
        "system.update": systemChange,
        "config.changed": systemChange,
        "validator.status": .anyObject,
        "chain.data": .anyObject,
    ]

    /// The schema shared by `package.install`, `package.update` and `package.remove`.
    private static let packageChange = PayloadSchema(fields: [
        .required("dnpName", .string),
        .required("version", .string),
        .required("operation", .oneOf(["install", "update", "remove", "restart"])),
        .required("status", .oneOf(["started", "progress", "completed", "error"])),
        .optional("progress", .number),
        .optional("error", .string),
    ])

    /// The schema shared by `system.restart`, `system.update` and `config.changed`.
    private static let systemChange = PayloadSchema(fields: [
        .required("type", .oneOf(["restart", "update", "config-change"])),
        .required("component", .string),
        .optional("data", .any),
        .required("timestamp", .integer),
    ])
}
