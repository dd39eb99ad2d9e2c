// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `maintenance.data`: flush and/or clean up stored data (replaces StorageFlush and DataCleanup).
public struct MaintenanceData: CatalogEvent {
    /// `maintenance.data`.
    public static let eventType = "maintenance.data"

    /// `operation`.
    public var operation: MaintenanceOperation
    /// `urgency`.
    public var urgency: MaintenanceUrgency
    /// `reason`.
    public var reason: MaintenanceReason
    /// `target_age_days` (optional).
    public var targetAgeDays: Int?
    /// `timeout_seconds` (optional).
    public var timeoutSeconds: Int?

    /// Makes the payload from its fields.
    public init(
        operation: MaintenanceOperation,
        urgency: MaintenanceUrgency,
        reason: MaintenanceReason,
        targetAgeDays: Int? = nil,
        timeoutSeconds: Int? = nil
    ) {
        self.operation = operation
        self.urgency = urgency
        self.reason = reason
        self.targetAgeDays = targetAgeDays
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey {
        case operation
        case urgency
        case reason
        case targetAgeDays = "target_age_days"
        case timeoutSeconds = "timeout_seconds"
    }
}

/// `maintenance.started`: a maintenance task began.
public struct MaintenanceStarted: CatalogEvent {
    /// `maintenance.started`.
    public static let eventType = "maintenance.started"

    /// `maintenance_type`.
    public var maintenanceType: String
    /// `estimated_duration_seconds` (optional).
    public var estimatedDurationSeconds: Int?

    /// Makes the payload from its fields.
    public init(maintenanceType: String, estimatedDurationSeconds: Int? = nil) {
        self.maintenanceType = maintenanceType
        self.estimatedDurationSeconds = estimatedDurationSeconds
    }

    enum CodingKeys: String, CodingKey {
        case maintenanceType = "maintenance_type"
        case estimatedDurationSeconds = "estimated_duration_seconds"
    }
}

/// `maintenance.completed`: a maintenance task ended.
public struct MaintenanceCompleted: CatalogEvent {
    /// `maintenance.completed`.
    public static let eventType = "maintenance.completed"

    /// `maintenance_type`.
    public var maintenanceType: String
    /// `success`.
    public var success: Bool
    /// `duration_ms`.
    public var durationMs: Int
    /// `results` (optional).
    public var results: JSONValue?

    /// Makes the payload from its fields.
    public init(maintenanceType: String, success: Bool, durationMs: Int, results: JSONValue? = nil) {
        self.maintenanceType = maintenanceType
        self.success = success
        self.durationMs = durationMs
        self.results = results
    }

    enum CodingKeys: String, CodingKey {
        case maintenanceType = "maintenance_type"
        case success
        case durationMs = "duration_ms"
        case results
    }
}

/// `health.check`: the result of a health check.
public struct HealthCheck: CatalogEvent {
    /// `health.check`.
    public static let eventType = "health.check"

    /// `check_type`.
    public var checkType: String
    /// `node_healthy`.
    public var nodeHealthy: Bool
    /// `health_report` (optional).
    public var healthReport: JSONValue?

    /// Makes the payload from its fields.
    public init(checkType: String, nodeHealthy: Bool, healthReport: JSONValue? = nil) {
        self.checkType = checkType
        self.nodeHealthy = nodeHealthy
        self.healthReport = healthReport
    }

    enum CodingKeys: String, CodingKey {
        case checkType = "check_type"
        case nodeHealthy = "node_healthy"
        case healthReport = "health_report"
    }
}

/// `resource.disk_space_low`: free disk space fell below its threshold.
public struct ResourceDiskSpaceLow: CatalogEvent {
    /// `resource.disk_space_low`.
    public static let eventType = "resource.disk_space_low"

    /// `available_bytes`.
    public var availableBytes: Int
    /// `total_bytes`.
    public var totalBytes: Int
    /// `percent_free`.
    public var percentFree: Double
    /// `disk_path`.
    public var diskPath: String

    /// Makes the payload from its fields.
    public init(availableBytes: Int, totalBytes: Int, percentFree: Double, diskPath: String) {
        self.availableBytes = availableBytes
        self.totalBytes = totalBytes
        self.percentFree = percentFree
        self.diskPath = diskPath
    }

    enum CodingKeys: String, CodingKey {
        case availableBytes = "available_bytes"
        case totalBytes = "total_bytes"
        case percentFree = "percent_free"
        case diskPath = "disk_path"
    }
}

/// `resource.limit_warning`: a resource passed its warning threshold (also consumer lag).
public struct ResourceLimitWarning: CatalogEvent {
    /// `resource.limit_warning`.
    public static let eventType = "resource.limit_warning"

    /// `resource_type`.
    public var resourceType: String
    /// `usage_percent`.
    public var usagePercent: Double
    /// `current_usage`.
    public var currentUsage: Int
    /// `limit`.
    public var limit: Int
    /// `threshold_percent`.
    public var thresholdPercent: Double

    /// Makes the payload from its fields.
    public init(resourceType: String, usagePercent: Double, currentUsage: Int, limit: Int, thresholdPercent: Double) {
        self.resourceType = resourceType
        self.usagePercent = usagePercent
        self.currentUsage = currentUsage
        self.limit = limit
        self.thresholdPercent = thresholdPercent
    }

    enum CodingKeys: String, CodingKey {
        case resourceType = "resource_type"
        case usagePercent = "usage_percent"
        case currentUsage = "current_usage"
        case limit
        case thresholdPercent = "threshold_percent"
    }
}
