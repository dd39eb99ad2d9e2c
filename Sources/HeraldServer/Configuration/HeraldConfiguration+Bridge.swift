import Foundation
import HeraldCore
import TOMLKit

extension HeraldConfiguration {
    /// `[bridge.rabbitmq]` (docs/scale-out.md): present, the broker publishes its stored events to a
    /// RabbitMQ topic exchange and feeds the queues of `[[bridge.rabbitmq.consume]]` into its own log.
    public struct RabbitMQBridge: Sendable, Equatable {
        /// The consumer group through which the bridge reads the log; reserved, so no client may join it.
        public static let groupName = "rabbitmq-bridge"

        /// The RabbitMQ server, `amqp://user:password@host:port/vhost`.
        public var url = "amqp://guest:guest@127.0.0.1:5672"
        /// The topic exchange events are published to (declared durable).
        public var exchange = "herald.events"
        /// The topics of stored events that are published.
        public var publish = ["#"]
        /// This broker's id in `metadata.origin`; empty means the one kept in `<data_dir>/broker-id`.
        public var brokerID = ""
        /// Where the bridge's group starts the first time: `"latest"` (events stored from then on) or
        /// `"earliest"` (everything the log still holds).
        public var start = "latest"
        /// Publishes waiting for RabbitMQ's confirm at once.
        public var maxInFlight = 1024
        /// The largest message the bridge publishes (the envelope's bytes): RabbitMQ closes the channel of a
        /// larger one than its `max_message_size`, so a larger one goes to the bridge group's dead-letter
        /// queue instead (`dead_letter_reason: "too_large_for_rabbitmq"`).
        public var maxMessageBytes = 16 << 20
        /// How long a publish may wait for its confirm before the connection is given up and made again.
        public var confirmTimeoutMs = 30_000
        /// AMQP heartbeat; 0 turns heartbeats off.
        public var heartbeatSeconds = 10
        /// The first and the longest wait before connecting again; the wait doubles in between.
        public var reconnectMinMs = 100
        public var reconnectMaxMs = 30_000
        /// Queues whose messages are fed into this broker.
        public var consume: [Consume] = []

        public init() {}

        /// One `[[bridge.rabbitmq.consume]]` entry.
        public struct Consume: Sendable, Equatable {
            /// A durable queue; declared and bound to `patterns` on the exchange unless `declare` is false.
            public var queue: String
            /// Binding keys on the exchange (topic patterns).
            public var patterns: [String]
            /// Messages RabbitMQ hands over before the first is acknowledged.
            public var prefetch = 256
            /// `false`: the queue is made elsewhere (`herald bridge setup`) and is only consumed.
            public var declare = true

            public init(queue: String, patterns: [String], prefetch: Int = 256, declare: Bool = true) {
                self.queue = queue
                self.patterns = patterns
                self.prefetch = prefetch
                self.declare = declare
            }
        }
    }

    /// The keys of `[bridge.rabbitmq]`, read and printed in this order.
    private static let bridgeKeys: [String] = [
        "url", "exchange", "publish", "broker_id", "start", "max_in_flight", "max_message_bytes", "confirm_timeout_ms",
        "heartbeat_seconds", "reconnect_min_ms", "reconnect_max_ms", "consume",
    ]

    /// Reads the `[bridge]` table: `[bridge.rabbitmq]` is the one bridge there is.
    static func readBridge(_ table: TOMLTable) throws(ConfigurationError) -> RabbitMQBridge? {
        for name in table.keys where name != "rabbitmq" {
            throw ConfigurationError(key: "bridge.\(name)", "unknown key (the bridge there is: [bridge.rabbitmq])")
        }
        guard let value = table["rabbitmq"] else { return nil }
        guard let section = value.table else { throw ConfigurationError(key: "bridge.rabbitmq", "must be a table") }
        for name in section.keys where !bridgeKeys.contains(name) {
            throw ConfigurationError(key: "bridge.rabbitmq.\(name)", "unknown key")
        }
        var bridge = RabbitMQBridge()
        let reader = TableReader(table: section, prefix: "bridge.rabbitmq")
        bridge.url = try reader.string("url", default: bridge.url, check: Self.amqpURLProblem)
        bridge.exchange = try reader.string("exchange", default: bridge.exchange, check: amqpNameProblem)
        if section["publish"] != nil { bridge.publish = try reader.patterns("publish", default: []).map(\.text) }
        bridge.brokerID = try reader.string("broker_id", default: "") { id in
            if id == Self.foreignOrigin {
                return "'\(id)' is the origin given to messages of publishers that are not Herald brokers"
            }
            return id.isEmpty || Self.isValidBrokerID(id) ? nil : "must be 1 to 64 of [A-Za-z0-9_.-], or empty"
        }
        bridge.start = try reader.string("start", default: bridge.start) { start in
            ["latest", "earliest"].contains(start) ? nil : #"must be "latest" or "earliest""#
        }
        bridge.maxInFlight = try reader.integer("max_in_flight", 1...65_535, default: bridge.maxInFlight)
        bridge.maxMessageBytes = try reader.integer(
            "max_message_bytes", 1024...536_870_912, default: bridge.maxMessageBytes)
        bridge.confirmTimeoutMs = try reader.integer(
            "confirm_timeout_ms", 100...3_600_000, default: bridge.confirmTimeoutMs)
        bridge.heartbeatSeconds = try reader.integer("heartbeat_seconds", 0...3600, default: bridge.heartbeatSeconds)
        bridge.reconnectMinMs = try reader.integer("reconnect_min_ms", 1...3_600_000, default: bridge.reconnectMinMs)
        bridge.reconnectMaxMs = try reader.integer("reconnect_max_ms", 1...3_600_000, default: bridge.reconnectMaxMs)
        if bridge.reconnectMaxMs < bridge.reconnectMinMs {
            throw ConfigurationError(key: "bridge.rabbitmq.reconnect_max_ms", "must not be less than reconnect_min_ms")
        }
        if let value = section["consume"] {
            guard let entries = value.array else {
                throw ConfigurationError(
                    key: "bridge.rabbitmq.consume", "must be an array of tables ([[bridge.rabbitmq.consume]])")
            }
            for (index, entry) in entries.enumerated() {
                let prefix = "bridge.rabbitmq.consume[\(index)]"
                guard let table = entry.table else { throw ConfigurationError(key: prefix, "must be a table") }
                for name in table.keys where !["queue", "patterns", "prefetch", "declare"].contains(name) {
                    throw ConfigurationError(key: "\(prefix).\(name)", "unknown key")
                }
                let reader = TableReader(table: table, prefix: prefix)
                let queue = try reader.requiredString("queue", check: amqpNameProblem)
                let parsed = try reader.patterns("patterns", default: [])
                if parsed.isEmpty {
                    throw ConfigurationError(key: "\(prefix).patterns", "required, a non-empty array of topic patterns")
                }
                if bridge.consume.contains(where: { $0.queue == queue }) {
                    throw ConfigurationError(key: "\(prefix).queue", "'\(queue)' is consumed by another entry")
                }
                bridge.consume.append(
                    RabbitMQBridge.Consume(
                        queue: queue, patterns: parsed.map(\.text),
                        prefetch: try reader.integer("prefetch", 1...65_535, default: 256),
                        declare: try reader.boolean("declare", default: true)))
            }
        }
        return bridge
    }

    /// The `metadata.origin` the bridge gives a message that carries none (a publisher that is not a Herald
    /// broker): no broker may have it as its id, or it would drop those messages as its own.
    public static let foreignOrigin = "rabbitmq"

    /// Why `name` cannot name an exchange or queue: AMQP names are 1 to 255 bytes, and `amq.` is RabbitMQ's.
    public static func amqpNameProblem(_ name: String) -> String? {
        if name.isEmpty || name.utf8.count > 255 { return "must be 1 to 255 bytes" }
        if name.hasPrefix("amq.") { return "names starting with 'amq.' are reserved by RabbitMQ" }
        return nil
    }

    /// A broker id: 1 to 64 of `[A-Za-z0-9_.-]`.
    public static func isValidBrokerID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                    true
                default: false
                }
            }
    }

    /// `[bridge.rabbitmq]` and its `[[bridge.rabbitmq.consume]]` entries as `herald.toml` lines.
    var bridgeLines: [String] {
        guard let bridge else { return [] }
        func patterns(_ list: [String]) -> String {
            "[" + list.map(ConfigurationKey.quoted).joined(separator: ", ") + "]"
        }
        var lines = [
            "", "[bridge.rabbitmq]",
            "url = \(ConfigurationKey.quoted(Self.redactingPassword(bridge.url)))",
            "exchange = \(ConfigurationKey.quoted(bridge.exchange))",
            "publish = \(patterns(bridge.publish))",
            "broker_id = \(ConfigurationKey.quoted(bridge.brokerID))",
            "start = \(ConfigurationKey.quoted(bridge.start))",
            "max_in_flight = \(bridge.maxInFlight)",
            "max_message_bytes = \(bridge.maxMessageBytes)",
            "confirm_timeout_ms = \(bridge.confirmTimeoutMs)",
            "heartbeat_seconds = \(bridge.heartbeatSeconds)",
            "reconnect_min_ms = \(bridge.reconnectMinMs)",
            "reconnect_max_ms = \(bridge.reconnectMaxMs)",
        ]
        for entry in bridge.consume {
            lines += [
                "", "[[bridge.rabbitmq.consume]]",
                "queue = \(ConfigurationKey.quoted(entry.queue))",
                "patterns = \(patterns(entry.patterns))",
                "prefetch = \(entry.prefetch)",
                "declare = \(entry.declare)",
            ]
        }
        return lines
    }

    /// Why `url` is not an AMQP URL the bridge can connect with, or `nil`: `amqp://[user[:password]@]host
    /// [:port][/vhost]` as librabbitmq reads it, checked here so that a bad one is refused at start rather
    /// than retried for ever. The reason never quotes the URL (it may hold a password).
    public static func amqpURLProblem(_ url: String) -> String? {
        if url.hasPrefix("amqps://") { return "amqps:// is not supported (TLS): use amqp://" }
        guard url.hasPrefix("amqp://") else { return "must be an amqp:// URL: amqp://user:password@host:port/vhost" }
        var rest = Substring(url.dropFirst("amqp://".count))
        if rest.contains("?") || rest.contains("#") { return "must not have a query or a fragment" }
        var vhost: Substring?
        if let slash = rest.firstIndex(of: "/") {
            vhost = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let vhost {
            if vhost.contains("/") { return "the vhost must be one path segment (write / inside it as %2f)" }
            if String(vhost).removingPercentEncoding == nil { return "the vhost is not valid percent-encoding" }
        }
        var hostPort = rest
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            if String(userInfo).removingPercentEncoding == nil {
                return "the user or password is not valid percent-encoding"
            }
            hostPort = rest[rest.index(after: at)...]
        }
        var host = hostPort
        var port: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return "an IPv6 host must end with ]" }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return "after the IPv6 host comes :port or nothing" }
                port = after.dropFirst()
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = hostPort[..<colon]
            port = hostPort[hostPort.index(after: colon)...]
        }
        if host.isEmpty { return "has no host" }
        if let port {
            guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber), let number = Int(port),
                (1...65535).contains(number)
            else { return "the port must be a number from 1 to 65535" }
        }
        return nil
    }

    /// `url` with its password replaced by `(redacted)`, for printing and logging.
    public static func redactingPassword(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<url.index(after: colon)]) + "(redacted)" + String(url[at...])
    }
}

/// Reads the typed keys of one TOML table, each error naming `prefix.key`.
struct TableReader {
    let table: TOMLTable
    let prefix: String

    func string(_ name: String, default value: String, check: (String) -> String? = { _ in nil })
        throws(ConfigurationError) -> String
    {
        guard let found = table[name] else { return value }
        guard let text = found.string else { throw ConfigurationError(key: "\(prefix).\(name)", "must be a string") }
        if let problem = check(text) { throw ConfigurationError(key: "\(prefix).\(name)", problem) }
        return text
    }

    func requiredString(_ name: String, check: (String) -> String? = { _ in nil }) throws(ConfigurationError)
        -> String
    {
        guard let text = table[name]?.string, !text.isEmpty else {
            throw ConfigurationError(key: "\(prefix).\(name)", "required, a non-empty string")
        }
        if let problem = check(text) { throw ConfigurationError(key: "\(prefix).\(name)", problem) }
        return text
    }

    func patterns(_ name: String, default value: [TopicPattern]) throws(ConfigurationError) -> [TopicPattern] {
        guard let found = table[name] else { return value }
        return try ConfigurationKey.readPatterns("\(prefix).\(name)", found)
    }

    func integer(_ name: String, _ range: ClosedRange<Int>, default value: Int) throws(ConfigurationError) -> Int {
        guard let found = table[name] else { return value }
        return try ConfigurationKey.readInteger("\(prefix).\(name)", found, range)
    }

    func boolean(_ name: String, default value: Bool) throws(ConfigurationError) -> Bool {
        guard let found = table[name] else { return value }
        guard let flag = found.bool else { throw ConfigurationError(key: "\(prefix).\(name)", "must be true or false") }
        return flag
    }
}
