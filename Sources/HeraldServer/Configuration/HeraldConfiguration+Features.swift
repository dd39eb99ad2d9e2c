import HeraldLog

extension HeraldConfiguration {
    /// Options whose feature is not built yet, with the issue that builds it. A configuration that sets any
    /// of them to something other than its default is refused, rather than run without what it asks for.
    /// Remove a line here when its feature lands.
    static let unbuiltOptions: [(key: String, isDefault: @Sendable (HeraldConfiguration) -> Bool, issue: String)] = []

    /// Refuses options whose feature is not built yet (see ``unbuiltOptions``).
    public func checkBuiltFeatures() throws(ConfigurationError) {
        for option in Self.unbuiltOptions where !option.isDefault(self) {
            throw ConfigurationError(key: option.key, "not built yet: arrives with issue \(option.issue)")
        }
    }
}

extension HeraldConfiguration {
    /// The durable log's configuration: `<data_dir>/log` and the `[log]` keys; `retention_bytes` is shared
    /// equally by the partitions, and 0 turns a retention limit off.
    public var logConfiguration: LogConfiguration {
        LogConfiguration(
            directory: dataDirectory + "/log",
            partitions: log.partitions,
            fsync: LogConfiguration.FsyncPolicy(rawValue: log.fsync.rawValue) ?? .batch,
            retentionMilliseconds: log.retentionDays > 0 ? Int64(log.retentionDays) * 86_400_000 : nil,
            retentionBytesPerPartition: log.retentionBytes > 0
                ? max(1, Int(log.retentionBytes) / log.partitions) : nil,
            lingerMilliseconds: log.lingerMs
        )
    }
}

extension HeraldConfiguration {
    /// Where consumer groups keep their state and dead letters: `<data_dir>/groups`.
    public var groupsDirectory: String { dataDirectory + "/groups" }

    /// The `[groups]` keys as the groups use them.
    public var groupSettings: GroupSettings {
        var settings = GroupSettings(
            ackWaitMs: Int64(groups.ackWaitMs),
            maxDeliver: groups.maxDeliver,
            backoffMs: groups.backoffMs.map { Int64($0) },
            maxInFlight: groups.maxInFlight
        )
        // What the bridge took and RabbitMQ did not confirm is published again after every restart, never
        // dead-lettered (docs/scale-out.md).
        settings.unlimitedAttempts = [RabbitMQBridge.groupName]
        return settings
    }
}
