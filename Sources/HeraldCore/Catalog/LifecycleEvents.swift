// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `module.loaded`: a module finished starting: its first subscribe or `ready` (PROTOCOL.md §3).
public struct ModuleLoaded: CatalogEvent {
    /// `module.loaded`.
    public static let eventType = "module.loaded"

    /// `module_name`.
    public var moduleName: String
    /// `version`.
    public var version: String

    /// Makes the payload from its fields.
    public init(moduleName: String, version: String) {
        self.moduleName = moduleName
        self.version = version
    }

    enum CodingKeys: String, CodingKey {
        case moduleName = "module_name"
        case version
    }
}

/// `module.unloaded`: the last connection of a loaded module closed.
public struct ModuleUnloaded: CatalogEvent {
    /// `module.unloaded`.
    public static let eventType = "module.unloaded"

    /// `module_name`.
    public var moduleName: String
    /// `version`.
    public var version: String
    /// `reason`.
    public var reason: UnloadReason

    /// Makes the payload from its fields.
    public init(moduleName: String, version: String, reason: UnloadReason) {
        self.moduleName = moduleName
        self.version = version
        self.reason = reason
    }

    enum CodingKeys: String, CodingKey {
        case moduleName = "module_name"
        case version
        case reason
    }
}

/// `module.reloaded`: a module was restarted with a new version.
public struct ModuleReloaded: CatalogEvent {
    /// `module.reloaded`.
    public static let eventType = "module.reloaded"

    /// `module_name`.
    public var moduleName: String
    /// `old_version`.
    public var oldVersion: String
    /// `new_version`.
    public var newVersion: String

    /// Makes the payload from its fields.
    public init(moduleName: String, oldVersion: String, newVersion: String) {
        self.moduleName = moduleName
        self.oldVersion = oldVersion
        self.newVersion = newVersion
    }

    enum CodingKeys: String, CodingKey {
        case moduleName = "module_name"
        case oldVersion = "old_version"
        case newVersion = "new_version"
    }
}

/// `module.crashed`: a module's process exited non-zero or was killed by a signal.
public struct ModuleCrashed: CatalogEvent {
    /// `module.crashed`.
    public static let eventType = "module.crashed"

    /// `module_name`.
    public var moduleName: String
    /// `error`: exit status or signal, and the last lines of its stderr.
    public var error: String

    /// Makes the payload from its fields.
    public init(moduleName: String, error: String) {
        self.moduleName = moduleName
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case moduleName = "module_name"
        case error
    }
}

/// `module.health_changed`: a module's health changed.
public struct ModuleHealthChanged: CatalogEvent {
    /// `module.health_changed`.
    public static let eventType = "module.health_changed"

    /// `module_name`.
    public var moduleName: String
    /// `old_health`.
    public var oldHealth: ModuleHealth
    /// `new_health`.
    public var newHealth: ModuleHealth

    /// Makes the payload from its fields.
    public init(moduleName: String, oldHealth: ModuleHealth, newHealth: ModuleHealth) {
        self.moduleName = moduleName
        self.oldHealth = oldHealth
        self.newHealth = newHealth
    }

    enum CodingKeys: String, CodingKey {
        case moduleName = "module_name"
        case oldHealth = "old_health"
        case newHealth = "new_health"
    }
}

/// `node.startup_completed`: every module that should start is loaded, failed or timed out.
public struct NodeStartupCompleted: CatalogEvent {
    /// `node.startup_completed`.
    public static let eventType = "node.startup_completed"

    /// `duration_ms`.
    public var durationMs: Int
    /// `components`.
    public var components: [String]

    /// Makes the payload from its fields.
    public init(durationMs: Int, components: [String]) {
        self.durationMs = durationMs
        self.components = components
    }

    enum CodingKeys: String, CodingKey {
        case durationMs = "duration_ms"
        case components
    }
}

/// `node.shutdown`: the node is shutting down.
public struct NodeShutdown: CatalogEvent {
    /// `node.shutdown`.
    public static let eventType = "node.shutdown"

    /// `reason`.
    public var reason: String
    /// `timeout_seconds`.
    public var timeoutSeconds: Int

    /// Makes the payload from its fields.
    public init(reason: String, timeoutSeconds: Int) {
        self.reason = reason
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey {
        case reason
        case timeoutSeconds = "timeout_seconds"
    }
}

/// `node.shutdown_completed`: the node finished shutting down.
public struct NodeShutdownCompleted: CatalogEvent {
    /// `node.shutdown_completed`.
    public static let eventType = "node.shutdown_completed"

    /// `duration_ms`.
    public var durationMs: Int

    /// Makes the payload from its fields.
    public init(durationMs: Int) {
        self.durationMs = durationMs
    }

    enum CodingKeys: String, CodingKey {
        case durationMs = "duration_ms"
    }
}

/// `config.loaded`: the configuration was read.
public struct ConfigLoaded: CatalogEvent {
    /// `config.loaded`.
    public static let eventType = "config.loaded"

    /// `changed_sections`.
    public var changedSections: [String]
    /// `config_json` (optional).
    public var configJson: String?

    /// Makes the payload from its fields.
    public init(changedSections: [String], configJson: String? = nil) {
        self.changedSections = changedSections
        self.configJson = configJson
    }

    enum CodingKeys: String, CodingKey {
        case changedSections = "changed_sections"
        case configJson = "config_json"
    }
}
