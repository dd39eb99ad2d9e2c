// The closed sets of string values the catalog's payloads use. Decoding any other value is an error that
// names the allowed ones.

/// The outcome of a confirmed transaction.
public enum TransactionStatus: String, CatalogValue {
    /// `"success"`.
    case success
    /// `"failed"`.
    case failed
}

/// Why a module was unloaded (PROTOCOL.md §3).
public enum UnloadReason: String, CatalogValue {
    /// `"bye"`.
    case bye
    /// `"disconnected"`.
    case disconnected
    /// `"stopped"`.
    case stopped
    /// `"crashed"`.
    case crashed
}

/// A module's health.
public enum ModuleHealth: String, CatalogValue {
    /// `"healthy"`.
    case healthy
    /// `"degraded"`.
    case degraded
    /// `"unhealthy"`.
    case unhealthy
}

/// What `maintenance.data` asks for.
public enum MaintenanceOperation: String, CatalogValue {
    /// `"flush"`.
    case flush
    /// `"cleanup"`.
    case cleanup
    /// `"both"`.
    case both
}

/// How urgent a `maintenance.data` request is.
public enum MaintenanceUrgency: String, CatalogValue {
    /// `"low"`.
    case low
    /// `"medium"`.
    case medium
    /// `"high"`.
    case high
}

/// Why `maintenance.data` was published.
public enum MaintenanceReason: String, CatalogValue {
    /// `"periodic"`.
    case periodic
    /// `"shutdown"`.
    case shutdown
    /// `"low_disk"`.
    case lowDisk = "low_disk"
    /// `"manual"`.
    case manual
}

/// The kind of a UI notification.
public enum NotificationType: String, CatalogValue {
    /// `"info"`.
    case info
    /// `"success"`.
    case success
    /// `"warning"`.
    case warning
    /// `"error"`.
    case error
}

/// The operation a package event reports on.
public enum PackageOperation: String, CatalogValue {
    /// `"install"`.
    case install
    /// `"update"`.
    case update
    /// `"remove"`.
    case remove
    /// `"restart"`.
    case restart
}

/// Where a package operation stands.
public enum PackageStatus: String, CatalogValue {
    /// `"started"`.
    case started
    /// `"progress"`.
    case progress
    /// `"completed"`.
    case completed
    /// `"error"`.
    case error
}

/// The kind of a system change.
public enum SystemChangeType: String, CatalogValue {
    /// `"restart"`.
    case restart
    /// `"update"`.
    case update
    /// `"config-change"`.
    case configChange = "config-change"
}
