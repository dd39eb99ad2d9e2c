import HeraldCore

/// A module's `module.toml` (ARCHITECTURE.md "Module manifest", `docs/modules.md`): what the supervisor
/// starts, with which permissions, limits and restart policy.
public struct ModuleManifest: Sendable, Equatable {
    /// The module's name, the same as its folder's and as the one it says in `hello`.
    public var name: String
    /// Its version (semantic versioning), reported in `module.loaded` and `GET /v1/modules`.
    public var version: String
    /// The module's folder, absolute.
    public var folder: String
    /// The executable, absolute, inside ``folder``.
    public var entryPoint: String
    /// Arguments after the executable.
    public var arguments: [String] = []
    /// Modules that must be loaded before this one starts.
    public var dependencies: [String] = []
    /// What the token issued to each start may publish and subscribe to: everything (`#`) when the manifest
    /// leaves the key out, as a client on the socket may when no tokens are configured; `[]` allows nothing.
    public var publish = [ModuleManifest.everything]
    public var subscribe = [ModuleManifest.everything]

    /// `#`.
    static let everything = try! TopicPattern("#")
    /// When a stopped process is started again.
    public var restart = Restart()
    /// Variables added to the module's environment.
    public var environment: [String: String] = [:]
    /// Resource limits of the module's process (not the broker's).
    public var limits = Limits()

    /// `[restart]`.
    public struct Restart: Sendable, Equatable {
        /// Which exits start the module again.
        public var policy = Policy.onFailure
        /// Restarts allowed within ``window``; past them the module stays down.
        public var maxRestarts = 5
        /// The wait before the first restart; it doubles with each restart in the window, up to
        /// ``longestBackoffMs``.
        public var backoffMs = 1000

        /// The span `max_restarts` counts in.
        public static let window = Duration.seconds(600)
        /// The longest wait between restarts.
        public static let longestBackoffMs = 30_000

        /// `policy`.
        public enum Policy: String, Sendable, Equatable, CaseIterable {
            /// A module that stops stays stopped.
            case never
            /// Restarted after a non-zero exit or a signal.
            case onFailure = "on-failure"
            /// Restarted after any exit the broker did not ask for.
            case always
        }

        /// The wait before a restart when `earlier` restarts happened within the window.
        func backoff(after earlier: Int) -> Duration {
            let doubled = backoffMs << min(earlier, 16)
            return .milliseconds(min(doubled, Self.longestBackoffMs))
        }
    }

    /// `[limits]`.
    public struct Limits: Sendable, Equatable {
        /// The process's data size limit (`RLIMIT_DATA`: heap and private mappings), in MiB.
        public var memoryMB: Int?
        /// The process's open file limit (`RLIMIT_NOFILE`).
        public var openFiles: Int?
    }
}

/// Why a manifest or a set of manifests was refused: `description` is the line the broker logs and
/// `POST /v1/modules/{name}/load` answers.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The manifest's file.
    public let file: String
    /// The offending key (`entry_point`, `restart.policy`), or empty for the file as a whole.
    public let key: String
    /// What is wrong.
    public let message: String

    init(file: String, key: String = "", _ message: String) {
        self.file = file
        self.key = key
        self.message = message
    }

    public var description: String { key.isEmpty ? "\(file): \(message)" : "\(file): \(key): \(message)" }
}
