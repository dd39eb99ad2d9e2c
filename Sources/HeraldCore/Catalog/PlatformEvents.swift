// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `notification`: a notification for the web UI (named so as not to clash with Foundation's `Notification`).
public struct PlatformNotification: CatalogEvent {
    /// `notification`.
    public static let eventType = "notification"

    /// `id`.
    public var id: String
    /// `type`.
    public var type: NotificationType
    /// `title`.
    public var title: String
    /// `body`.
    public var body: String
    /// `timestamp`.
    public var timestamp: Int
    /// `actions` (optional).
    public var actions: [[String: JSONValue]]?

    /// Makes the payload from its fields.
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
    /// `package.install`.
    public static let eventType = "package.install"

    /// The payload's fields, shared with the other events of this shape.
    public var change: PackageChange

    /// Makes the payload from its fields.
    public init(_ change: PackageChange) {
        self.change = change
    }

    /// Decodes the shared fields at the top level of the payload.
    public init(from decoder: any Decoder) throws {
        change = try PackageChange(from: decoder)
    }

    /// Encodes the shared fields at the top level of the payload.
    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `package.update`: progress of a package update.
public struct PackageUpdate: CatalogEvent {
    /// `package.update`.
    public static let eventType = "package.update"

    /// The payload's fields, shared with the other events of this shape.
    public var change: PackageChange

    /// Makes the payload from its fields.
    public init(_ change: PackageChange) {
        self.change = change
    }

    /// Decodes the shared fields at the top level of the payload.
    public init(from decoder: any Decoder) throws {
        change = try PackageChange(from: decoder)
    }

    /// Encodes the shared fields at the top level of the payload.
    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `package.remove`: progress of a package removal.
public struct PackageRemove: CatalogEvent {
    /// `package.remove`.
    public static let eventType = "package.remove"

    /// The payload's fields, shared with the other events of this shape.
    public var change: PackageChange

    /// Makes the payload from its fields.
    public init(_ change: PackageChange) {
        self.change = change
    }

    /// Decodes the shared fields at the top level of the payload.
    public init(from decoder: any Decoder) throws {
        change = try PackageChange(from: decoder)
    }

    /// Encodes the shared fields at the top level of the payload.
    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `system.restart`: a system restart.
public struct SystemRestart: CatalogEvent {
    /// `system.restart`.
    public static let eventType = "system.restart"

    /// The payload's fields, shared with the other events of this shape.
    public var change: SystemChange

    /// Makes the payload from its fields.
    public init(_ change: SystemChange) {
        self.change = change
    }

    /// Decodes the shared fields at the top level of the payload.
    public init(from decoder: any Decoder) throws {
        change = try SystemChange(from: decoder)
    }

    /// Encodes the shared fields at the top level of the payload.
    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `system.update`: a system update.
public struct SystemUpdate: CatalogEvent {
    /// `system.update`.
    public static let eventType = "system.update"

    /// The payload's fields, shared with the other events of this shape.
    public var change: SystemChange

    /// Makes the payload from its fields.
    public init(_ change: SystemChange) {
        self.change = change
    }

    /// Decodes the shared fields at the top level of the payload.
    public init(from decoder: any Decoder) throws {
        change = try SystemChange(from: decoder)
    }

    /// Encodes the shared fields at the top level of the payload.
    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `config.changed`: a configuration change.
public struct ConfigChanged: CatalogEvent {
    /// `config.changed`.
    public static let eventType = "config.changed"

    /// The payload's fields, shared with the other events of this shape.
    public var change: SystemChange

    /// Makes the payload from its fields.
    public init(_ change: SystemChange) {
        self.change = change
    }

    /// Decodes the shared fields at the top level of the payload.
    public init(from decoder: any Decoder) throws {
        change = try SystemChange(from: decoder)
    }

    /// Encodes the shared fields at the top level of the payload.
    public func encode(to encoder: any Encoder) throws {
        try change.encode(to: encoder)
    }
}

/// `validator.status`: validator status: any object.
public struct ValidatorStatus: CatalogEvent {
    /// `validator.status`.
    public static let eventType = "validator.status"

    /// The payload object's members.
    public var fields: [String: JSONValue]

    /// Makes the payload from its members.
    public init(_ fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// Decodes any JSON object.
    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    /// Encodes the members as one JSON object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }
}

/// `chain.data`: chain data: any object.
public struct ChainData: CatalogEvent {
    /// `chain.data`.
    public static let eventType = "chain.data"

    /// The payload object's members.
    public var fields: [String: JSONValue]

    /// Makes the payload from its members.
    public init(_ fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// Decodes any JSON object.
    public init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    /// Encodes the members as one JSON object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }
}

/// The payload of `package.install`, `package.update` and `package.remove`.
public struct PackageChange: Codable, Sendable, Hashable {
    /// `dnpName`.
    public var dnpName: String
    /// `version`.
    public var version: String
    /// `operation`.
    public var operation: PackageOperation
    /// `status`.
    public var status: PackageStatus
    /// `progress` (optional).
    public var progress: Double?
    /// `error` (optional).
    public var error: String?

    /// Makes the payload from its fields.
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
    /// `type`.
    public var type: SystemChangeType
    /// `component`.
    public var component: String
    /// `data` (optional).
    public var data: JSONValue?
    /// `timestamp`.
    public var timestamp: Int

    /// Makes the payload from its fields.
    public init(type: SystemChangeType, component: String, data: JSONValue? = nil, timestamp: Int) {
        self.type = type
        self.component = component
        self.data = data
        self.timestamp = timestamp
    }
}
