// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `module.loaded`: a module finished starting: its first subscribe or `ready` (PROTOCOL.md §3).
public struct ModuleLoaded: CatalogEvent {
    public static let eventType = "module.loaded"

    public var moduleName: String
    public var version: String

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
    public static let eventType = "module.unloaded"

    public var moduleName: String
    public var version: String
    public var reason: UnloadReason

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
    public static let eventType = "module.reloaded"

    public var moduleName: String
    public var oldVersion: String
    public var newVersion: String

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
    public static let eventType = "module.crashed"

    public var moduleName: String
    public var error: String  // exit status or signal, and the last lines of its stderr

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
    public static let eventType = "module.health_changed"

    public var moduleName: String
    public var oldHealth: ModuleHealth
    public var newHealth: ModuleHealth

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
    public static let eventType = "node.startup_completed"

    public var durationMs: Int
    public var components: [String]

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
    public static let eventType = "node.shutdown"

    public var reason: String
    public var timeoutSeconds: Int

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
    public static let eventType = "node.shutdown_completed"

    public var durationMs: Int

    public init(durationMs: Int) {
        self.durationMs = durationMs
    }

    enum CodingKeys: String, CodingKey {
        case durationMs = "duration_ms"
    }
}

/// `config.loaded`: the configuration was read.
public struct ConfigLoaded: CatalogEvent {
    public static let eventType = "config.loaded"

    public var changedSections: [String]
    public var configJson: String?

    public init(changedSections: [String], configJson: String? = nil) {
        self.changedSections = changedSections
        self.configJson = configJson
    }

    enum CodingKeys: String, CodingKey {
        case changedSections = "changed_sections"
        case configJson = "config_json"
    }
}
