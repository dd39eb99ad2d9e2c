// The event catalog of EVENTS.md. Field names on the wire are exactly the producers' own; Swift names are
// their camel-case forms. Documented in docs/events.md.

/// `maintenance.data`: flush and/or clean up stored data (replaces StorageFlush and DataCleanup).
public struct MaintenanceData: CatalogEvent {
    public static let eventType = "maintenance.data"

    public var operation: MaintenanceOperation
    public var urgency: MaintenanceUrgency
    public var reason: MaintenanceReason
    public var targetAgeDays: Int?
    public var timeoutSeconds: Int?

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
    public static let eventType = "maintenance.started"

    public var maintenanceType: String
    public var estimatedDurationSeconds: Int?

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
    public static let eventType = "maintenance.completed"

    public var maintenanceType: String
    public var success: Bool
    public var durationMs: Int
    public var results: JSONValue?

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
    public static let eventType = "health.check"

    public var checkType: String
    public var nodeHealthy: Bool
    public var healthReport: JSONValue?

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
    public static let eventType = "resource.disk_space_low"

    public var availableBytes: Int
    public var totalBytes: Int
    public var percentFree: Double
    public var diskPath: String

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
    public static let eventType = "resource.limit_warning"

    public var resourceType: String
    public var usagePercent: Double
    public var currentUsage: Int
    public var limit: Int
    public var thresholdPercent: Double

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
