import HeraldCore

/// The broker's configuration (PROTOCOL.md §8, `docs/configuration.md`): every option with the default that
/// lets `herald serve` run with no file.
public struct HeraldConfiguration: Sendable, Equatable {
    /// Where the broker keeps its socket, log and module data.
    public var dataDirectory = "./herald-data"
    /// Whether events of catalog types must carry the catalog's payload fields.
    public var validatePayloads = false
    /// The IPC socket.
    public var ipc = IPC()
    /// The HTTP and WebSocket gateway.
    public var http = HTTP()
    /// The durable log.
    public var log = Log()
    /// Consumer groups.
    public var groups = Groups()
    /// The module supervisor.
    public var modules = Modules()
    /// Periodic maintenance, health checks and the disk-space monitor.
    public var housekeeping = Housekeeping()
    /// Tokens and their permissions; none by default.
    public var tokens: [Token] = []
    /// The RabbitMQ bridge; `nil` (no `[bridge.rabbitmq]`) runs without one.
    public var bridge: RabbitMQBridge?

    /// The defaults.
    public init() {}

    /// `[ipc]`.
    public struct IPC: Sendable, Equatable {
        /// The Unix socket; empty means `<data_dir>/herald.sock`.
        public var socket = ""
        /// An optional TCP listener, `host:port`; empty means off.
        public var tcp = ""
        /// The largest frame in either direction, announced in `welcome`.
        public var maxFrame = 1_048_576
        /// How long a connection may stay silent before the broker pings it.
        public var heartbeatMs = 10_000
        /// Live and durable subscriptions per connection.
        public var maxSubscriptions = 256
        /// Events per second per connection; 0 means unlimited.
        public var publishRate = 0
    }

    /// `[http]`.
    public struct HTTP: Sendable, Equatable {
        /// The HTTP listener, `host:port`; port 0 asks for any free port.
        public var listen = "127.0.0.1:7480"
        /// The largest request body the API reads; a larger one is refused with 413.
        public var maxBody = 10_485_760
    }

    /// `[log]`.
    public struct Log: Sendable, Equatable {
        /// Partitions of the durable log.
        public var partitions = 8
        /// When appends reach the disk.
        public var fsync = FsyncPolicy.batch
        /// Topics stored in the log; `[]` keeps nothing.
        public var persist = ["#"]
        /// Segments older than this are removed; 0 keeps them regardless of age.
        public var retentionDays = 7
        /// The log's size limit; 0 means no limit.
        public var retentionBytes: Int64 = 10_737_418_240
        /// How long an `event_id` is remembered for deduplication.
        public var dedupWindowMs = 120_000
        /// How long the log's writer may wait to write appends nobody waits for together (docs/storage.md).
        public var lingerMs = 5
    }

    /// The `fsync` policy of the log.
    public enum FsyncPolicy: String, Sendable, Equatable, CaseIterable {
        /// Every append is on disk before it is acknowledged.
        case always
        /// Group commit: appends are flushed together.
        case batch
        /// The operating system decides.
        case never
    }

    /// `[groups]`.
    public struct Groups: Sendable, Equatable {
        /// How long a delivery may stay unacknowledged before it is redelivered.
        public var ackWaitMs = 30_000
        /// Deliveries of one event before it goes to the dead-letter queue.
        public var maxDeliver = 4
        /// The waits before the second, third, … delivery.
        public var backoffMs = [1000, 2000, 4000]
        /// Unacknowledged deliveries per member.
        public var maxInFlight = 1000
        /// Lag in events that raises an alert.
        public var lagAlertEvents = 1000
        /// Lag in age that raises an alert.
        public var lagAlertMs = 300_000
    }

    /// `[modules]`.
    public struct Modules: Sendable, Equatable {
        /// Where module folders with a `module.toml` live.
        public var directory = "./modules"
        /// How long a started module has to become loaded.
        public var startupTimeoutMs = 30_000
        /// How long a module has to stop before SIGKILL.
        public var shutdownTimeoutMs = 5000
    }

    /// `[housekeeping]` (docs/configuration.md); an interval of 0 turns its task off.
    public struct Housekeeping: Sendable, Equatable {
        /// How often the broker publishes `maintenance.data {cleanup, low, periodic}`.
        public var cleanupIntervalMs = 3_600_000
        /// How often the broker publishes `health.check`.
        public var healthCheckIntervalMs = 60_000
        /// How often the free space of the data directory's file system is checked.
        public var diskCheckIntervalMs = 30_000
        /// Below this percentage of free space, `resource.disk_space_low` and `maintenance.data {both, high,
        /// low_disk}` are published, once per crossing.
        public var diskLowPercent = 10
    }

    /// One `[[auth.tokens]]` entry.
    public struct Token: Sendable, Equatable {
        /// A name for logs and metrics.
        public var name: String
        /// The secret a client presents.
        public var secret: String
        /// Topics this token may publish to.
        public var publish: [TopicPattern]
        /// Topics this token may subscribe to.
        public var subscribe: [TopicPattern]

        /// Whether it may change the broker through the HTTP API: reset statistics, replay and purge dead
        /// letters, load and unload modules (docs/protocol.md).
        public var admin: Bool

        /// A token with its permissions.
        public init(
            name: String, secret: String, publish: [TopicPattern], subscribe: [TopicPattern], admin: Bool = false
        ) {
            self.name = name
            self.secret = secret
            self.publish = publish
            self.subscribe = subscribe
            self.admin = admin
        }
    }

    /// The socket path in effect: `ipc.socket`, or `<data_dir>/herald.sock`.
    public var socketPath: String {
        ipc.socket.isEmpty ? dataDirectory + "/herald.sock" : ipc.socket
    }

    /// Checks the rules that join several options or need parsing: addresses are `host:port`, and binding
    /// HTTP beyond loopback needs tokens; and, for values the flags set (the file's are checked as read),
    /// that directories are not empty and the socket's path fits a Unix socket.
    public func validate() throws(ConfigurationError) {
        if dataDirectory.isEmpty { throw ConfigurationError(key: "data_dir", "must not be empty") }
        if modules.directory.isEmpty { throw ConfigurationError(key: "modules.dir", "must not be empty") }
        if let problem = ListenCheck.problem(socketPath: socketPath) {
            throw ConfigurationError(key: "ipc.socket", problem)
        }
        if !ipc.tcp.isEmpty, let tcp = HostPort(ipc.tcp), let web = HostPort(http.listen), tcp.port != 0,
            tcp == web
        {
            throw ConfigurationError(key: "ipc.tcp", "\(ipc.tcp) is also http.listen; the two listeners need two ports")
        }
        if !ipc.tcp.isEmpty && HostPort(ipc.tcp) == nil {
            throw ConfigurationError(key: "ipc.tcp", "must be host:port, or empty for no TCP listener")
        }
        guard let address = HostPort(http.listen) else {
            throw ConfigurationError(key: "http.listen", "must be host:port")
        }
        if !address.isLoopback && tokens.isEmpty {
            throw ConfigurationError(
                key: "http.listen",
                "\(http.listen) is not a loopback address; configure [[auth.tokens]] before exposing the broker"
            )
        }
    }
}

/// Why a configuration is refused; `description` is the one line `herald serve` prints before exiting.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The offending key, such as `ipc.max_frame`; empty for the file as a whole.
    public let key: String
    /// What is wrong with it.
    public let message: String

    init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }

    /// An error about the configuration file itself.
    public init(file: String, _ message: String) {
        self.key = ""
        self.message = "\(file): \(message)"
    }

    /// One line whatever the file held: a key or value quoted from it (`"a\nb" = 1`) has its control
    /// characters written as escapes.
    public var description: String {
        ConfigurationKey.escaped(
            key.isEmpty ? "configuration: \(message)" : "configuration: \(key): \(message)", quotes: false)
    }
}

/// A `host:port` option (the configuration's addresses, and the CLI's `--http`).
public struct HostPort: Equatable, Sendable {
    public let host: String
    public let port: Int

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let digits = text[text.index(after: colon)...]
        guard !host.isEmpty, !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
            let port = Int(digits), (0...65535).contains(port)
        else {
            return nil
        }
        self.host = host
        self.port = port
    }

    var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
