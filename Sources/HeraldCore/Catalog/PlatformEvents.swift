// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `notification`: a notification for the web UI (named so as not to clash with Foundation's `Notification`).
public struct PlatformNotification: CatalogEvent {
    public static let eventType = "notification"

    public var id: String
    public var type: NotificationType
    public var title: String
    public var body: String
    public var timestamp: Int
    public var actions: [[String: JSONValue]]?

    public init(
        id: String,
        type: NotificationType,
        title: String,
        body: String,
        timestamp: Int,
        actions: [[String: JSONValue]]? = nil
    ) {
        self.id = id
        self.type = type
        self.title = title
        self.body = body
        self.timestamp = timestamp
        self.actions = actions
    }
}

/// `package.install`: progress of a package installation.
public struct PackageInstall: CatalogEvent {
    public static let eventType = "package.install"

    public var change: PackageChange

    public init(_ change: PackageChange) {
        self.change = change
    }

    public init(from decoder: any Decoder) throws {
        change = try PackageChange(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `package.update`: progress of a package update.
public struct PackageUpdate: CatalogEvent {
    public static let eventType = "package.update"

    public var change: PackageChange

    public init(_ change: PackageChange) {
        self.change = change
    }

    public init(from decoder: any Decoder) throws {
        change = try PackageChange(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `package.remove`: progress of a package removal.
public struct PackageRemove: CatalogEvent {
    public static let eventType = "package.remove"

    public var change: PackageChange

    public init(_ change: PackageChange) {
        self.change = change
    }

    public init(from decoder: any Decoder) throws {
        change = try PackageChange(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `system.restart`: a system restart.
public struct SystemRestart: CatalogEvent {
    public static let eventType = "system.restart"

    public var change: SystemChange

    public init(_ change: SystemChange) {
        self.change = change
    }

    public init(from decoder: any Decoder) throws {
        change = try SystemChange(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `system.update`: a system update.
public struct SystemUpdate: CatalogEvent {
    public static let eventType = "system.update"

    public var change: SystemChange

    public init(_ change: SystemChange) {
        self.change = change
    }

    public init(from decoder: any Decoder) throws {
        change = try SystemChange(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `config.changed`: a configuration change.
public struct ConfigChanged: CatalogEvent {
    public static let eventType = "config.changed"

    public var change: SystemChange

    public init(_ change: SystemChange) {
        self.change = change
    }

    public init(from decoder: any Decoder) throws {
        change = try SystemChange(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `validator.status`: validator status: any object.
public struct ValidatorStatus: CatalogEvent {
    public static let eventType = "validator.status"

    public var fields: [String: JSONValue]

    public init(_ fields: [String: JSONValue]) {
        self.fields = fields
    }

    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }
}

/// `chain.data`: chain data: any object.
public struct ChainData: CatalogEvent {
    public static let eventType = "chain.data"

    public var fields: [String: JSONValue]

    public init(_ fields: [String: JSONValue]) {
        self.fields = fields
    }

    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }
}

/// The payload of `package.install`, `package.update` and `package.remove`.
public struct PackageChange: Codable, Sendable, Hashable {
    public var dnpName: String
    public var version: String
    public var operation: PackageOperation
    public var status: PackageStatus
    public var progress: Double?
    public var error: String?

    public init(
        dnpName: String,
        version: String,
        operation: PackageOperation,
        status: PackageStatus,
        progress: Double? = nil,
        error: String? = nil
    ) {
        self.dnpName = dnpName
        self.version = version
        self.operation = operation
        self.status = status
        self.progress = progress
        self.error = error
    }
}

/// The payload of `system.restart`, `system.update` and `config.changed`.
public struct SystemChange: Codable, Sendable, Hashable {
    public var type: SystemChangeType
    public var component: String
    public var data: JSONValue?
    public var timestamp: Int

    public init(type: SystemChangeType, component: String, data: JSONValue? = nil, timestamp: Int) {
        self.type = type
        self.component = component
        self.data = data
        self.timestamp = timestamp
    }
}
