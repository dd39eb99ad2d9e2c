import Foundation
import HeraldCore
import Logging

/// How a ``HeraldClient`` reaches the broker and who it says it is.
public struct HeraldClientConfiguration: Sendable {
    /// Where the broker listens.
    public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
        /// The broker's Unix socket (PROTOCOL.md §2.1), such as `./herald-data/herald.sock`.
        case unixSocket(String)
        /// The broker's TCP listener, which always requires a token.
        case tcp(host: String, port: Int)

        public var description: String {
            switch self {
            case .unixSocket(let path): path
            case .tcp(let host, let port): "\(host):\(port)"
            }
        }
    }

    /// How the client reconnects after losing its connection: exponential backoff with jitter.
    public struct Reconnect: Sendable, Equatable {
        /// Whether to reconnect at all; when `false` a lost connection closes the client.
        public var enabled: Bool
        /// The wait before the first attempt.
        public var initialDelay: Duration
        /// The longest wait between attempts; the wait doubles up to it.
        public var maximumDelay: Duration

        public init(
            enabled: Bool = true, initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5)
        ) {
            self.enabled = enabled
            self.initialDelay = initialDelay
            self.maximumDelay = maximumDelay
        }

        /// The wait before attempt `attempt` (0 first): the doubled delay, capped, then scaled by a random
        /// factor from 0.5 to 1 so that many clients of one broker do not reconnect in step.
        func delay(attempt: Int) -> Duration {
            var delay = initialDelay
            for _ in 0..<min(attempt, 32) where delay < maximumDelay { delay *= 2 }
            return min(delay, maximumDelay) * Double.random(in: 0.5...1)
        }
    }

    /// Where the broker listens.
    public var endpoint: Endpoint
    /// The module's name: 1 to 64 of `[a-z0-9_-]`; statistics are kept under it.
    public var module: String
    /// The module's version, announced in `hello` and in `module.loaded`.
    public var version: String
    /// An optional instance name, for several processes of one module.
    public var instance: String?
    /// The token to present in `hello`, when the broker wants one.
    public var token: String?
    /// What to do when the connection is lost.
    public var reconnect = Reconnect()
    /// How many delivered events each subscription holds for a consumer that reads slower than they come;
    /// beyond that, new events are dropped on the client and counted (``HeraldSubscription/droppedByClient``).
    /// The client never stops reading its socket: heartbeats and replies must get through.
    public var subscriptionBuffer = 10_000
    /// Where the client logs connects, reconnects and refused publishes.
    public var logger = Logger(label: "herald.client")

    public init(endpoint: Endpoint, module: String, version: String = "1.0.0", token: String? = nil) {
        self.endpoint = endpoint
        self.module = module
        self.version = version
        self.token = token
    }

    /// The configuration a module started by the broker finds in its environment: `HERALD_SOCKET`,
    /// `HERALD_MODULE_NAME` and `HERALD_TOKEN`; `module` and the socket `./herald-data/herald.sock` when they
    /// are not set.
    public static func fromEnvironment(
        module: String,
        version: String = "1.0.0",
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> HeraldClientConfiguration {
        HeraldClientConfiguration(
            endpoint: .unixSocket(environment["HERALD_SOCKET"] ?? "./herald-data/herald.sock"),
            module: environment["HERALD_MODULE_NAME"] ?? module,
            version: version,
            token: environment["HERALD_TOKEN"]
        )
    }
}
