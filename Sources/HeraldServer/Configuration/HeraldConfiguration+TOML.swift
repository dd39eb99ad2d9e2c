import HeraldCore
import TOMLKit

extension HeraldConfiguration {
    /// Every key `herald.toml` may hold besides `[[auth.tokens]]`, in the order `--print-config` prints them.
    static let keys: [ConfigurationKey] = [
        .string("data_dir", \.dataDirectory) { $0.isEmpty ? "must not be empty" : nil },
        .boolean("validate_payloads", \.validatePayloads),
        .string("ipc.socket", \.ipc.socket),
        .string("ipc.tcp", \.ipc.tcp) {
            $0.isEmpty || HostPort($0) != nil ? nil : "must be host:port, or empty for none"
        },
        .integer("ipc.max_frame", 4096...67_108_864, \.ipc.maxFrame),
        .integer("ipc.heartbeat_ms", 100...3_600_000, \.ipc.heartbeatMs),
        .integer("ipc.max_subscriptions", 1...100_000, \.ipc.maxSubscriptions),
        .integer("ipc.publish_rate", 0...100_000_000, \.ipc.publishRate),
        .string("http.listen", \.http.listen) { HostPort($0) != nil ? nil : "must be host:port" },
        .integer("http.max_body", 1024...1_073_741_824, \.http.maxBody),
        .integer("log.partitions", 1...1024, \.log.partitions),
        ConfigurationKey(
            name: "log.fsync",
            read: { configuration, value throws(ConfigurationError) in
                guard let text = value.string, let policy = FsyncPolicy(rawValue: text) else {
                    throw ConfigurationError(key: "log.fsync", #"must be "always", "batch" or "never""#)
                }
                configuration.log.fsync = policy
            },
            render: { ConfigurationKey.quoted($0.log.fsync.rawValue) }
        ),
        .patterns("log.persist", \.log.persist),
        .integer("log.retention_days", 0...36_500, \.log.retentionDays),
        .integer("log.retention_bytes", 0...Int.max, \.log.retentionBytes),
        .integer("log.dedup_window_ms", 0...86_400_000, \.log.dedupWindowMs),
        .integer("log.linger_ms", 0...60_000, \.log.lingerMs),
        .integer("groups.ack_wait_ms", 1...86_400_000, \.groups.ackWaitMs),
        .integer("groups.max_deliver", 1...1000, \.groups.maxDeliver),
        .integers("groups.backoff_ms", 0...86_400_000, \.groups.backoffMs),
        .integer("groups.max_in_flight", 1...100_000, \.groups.maxInFlight),
        .integer("groups.lag_alert_events", 1...Int.max, \.groups.lagAlertEvents),
        .integer("groups.lag_alert_ms", 1...Int.max, \.groups.lagAlertMs),
        .string("modules.dir", \.modules.directory) { $0.isEmpty ? "must not be empty" : nil },
        .integer("modules.startup_timeout_ms", 1...3_600_000, \.modules.startupTimeoutMs),
        .integer("modules.shutdown_timeout_ms", 0...3_600_000, \.modules.shutdownTimeoutMs),
        .integer("housekeeping.cleanup_interval_ms", 0...604_800_000, \.housekeeping.cleanupIntervalMs),
        .integer("housekeeping.health_check_interval_ms", 0...86_400_000, \.housekeeping.healthCheckIntervalMs),
        .integer("housekeeping.disk_check_interval_ms", 0...86_400_000, \.housekeeping.diskCheckIntervalMs),
        .integer("housekeeping.disk_low_percent", 0...100, \.housekeeping.diskLowPercent),
    ]

    /// The sections (and top-level keys) whose options differ from the defaults, `auth` when tokens are
    /// configured: `config.loaded`'s `changed_sections`.
    public var changedSections: [String] {
        let defaults = HeraldConfiguration()
        var sections: [String] = []
        for key in Self.keys where key.render(self) != key.render(defaults) {
            let section = key.section.isEmpty ? key.name : key.section
            if !sections.contains(section) { sections.append(section) }
        }
        if !tokens.isEmpty { sections.append("auth") }
        if bridge != nil { sections.append("bridge") }
        return sections
    }

    /// This configuration with the options of `herald.toml` text applied over it. Every key is checked: an
    /// unknown key, a wrong type or a value out of range is an error naming the key, and nothing is applied.
    public func applying(toml text: String) throws(ConfigurationError) -> HeraldConfiguration {
        if let line = TOMLText.lineOfNulByte(in: text) {
            throw ConfigurationError(key: "", "line \(line): a NUL byte (0x00), which TOML does not allow")
        }
        if let nul = TOMLText.nulEscape(in: text) {
            throw ConfigurationError(
                key: nul.key ?? "",
                "line \(nul.line): \(nul.key == nil ? "a key" : "the string") holds \\u0000 (NUL), which no setting may hold"
            )
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(
                key: "", "not valid TOML at \(error.source.begin.debugDescription): \(error.description)")
        } catch {
            throw ConfigurationError(key: "", "not valid TOML: \(error)")
        }
        var result = self
        let byName = Dictionary(uniqueKeysWithValues: Self.keys.map { ($0.name, $0) })
        let sections = Set(Self.keys.map(\.section)).subtracting([""]).union(["auth", "bridge"])
        for name in table.keys.sorted() {
            let value = table[name]!
            if sections.contains(name) {
                guard let section = value.table else { throw ConfigurationError(key: name, "must be a table") }
                if name == "auth" {
                    result.tokens = try Self.readAuth(section)
                    continue
                }
                if name == "bridge" {
                    result.bridge = try Self.readBridge(section)
                    continue
                }
                for field in section.keys.sorted() {
                    guard let key = byName["\(name).\(field)"] else {
                        throw ConfigurationError(key: "\(name).\(field)", "unknown key")
                    }
                    try key.read(&result, section[field]!)
                }
            } else {
                guard let key = byName[name] else { throw ConfigurationError(key: name, "unknown key") }
                try key.read(&result, value)
            }
        }
        return result
    }

    private static func readAuth(_ auth: TOMLTable) throws(ConfigurationError) -> [Token] {
        for name in auth.keys where name != "tokens" {
            throw ConfigurationError(key: "auth.\(name)", "unknown key")
        }
        guard let value = auth["tokens"] else { return [] }
        guard let entries = value.array else {
            throw ConfigurationError(key: "auth.tokens", "must be an array of tables ([[auth.tokens]])")
        }
        var tokens: [Token] = []
        for (index, entry) in entries.enumerated() {
            let prefix = "auth.tokens[\(index)]"
            guard let table = entry.table else { throw ConfigurationError(key: prefix, "must be a table") }
            for name in table.keys where !["name", "token", "publish", "subscribe", "admin"].contains(name) {
                throw ConfigurationError(key: "\(prefix).\(name)", "unknown key")
            }
            let reader = TableReader(table: table, prefix: prefix)
            let token = Token(
                name: try reader.requiredString("name"),
                secret: try reader.requiredString("token"),
                publish: try reader.patterns("publish", default: []),
                subscribe: try reader.patterns("subscribe", default: []),
                admin: try reader.boolean("admin", default: false)
            )
            if tokens.contains(where: { $0.name == token.name }) {
                throw ConfigurationError(key: "\(prefix).name", "'\(token.name)' is used by another token")
            }
            if tokens.contains(where: { $0.secret == token.secret }) {
                let redacted =
                    token.secret == "(redacted)" ? " (as --print-config writes every secret: put them back)" : ""
                throw ConfigurationError(key: "\(prefix).token", "is the same secret as another token's\(redacted)")
            }
            tokens.append(token)
        }
        return tokens
    }

    /// The configuration as `herald.toml` text, every key included, token secrets replaced by
    /// `"(redacted)"` so the output can be shared.
    public var tomlDescription: String {
        var lines: [String] = []
        var section = ""
        for key in Self.keys {
            if key.section != section {
                section = key.section
                lines.append("")
                lines.append("[\(section)]")
            }
            lines.append("\(key.field) = \(key.render(self))")
        }
        for token in tokens {
            lines.append("")
            lines.append("[[auth.tokens]]")
            lines.append("name = \(ConfigurationKey.quoted(token.name))")
            lines.append("token = \"(redacted)\"")
            lines.append(
                "publish = [" + token.publish.map { ConfigurationKey.quoted($0.text) }.joined(separator: ", ") + "]")
            lines.append(
                "subscribe = [" + token.subscribe.map { ConfigurationKey.quoted($0.text) }.joined(separator: ", ") + "]"
            )
            lines.append("admin = \(token.admin)")
        }
        lines += bridgeLines
        return lines.joined(separator: "\n") + "\n"
    }
}
