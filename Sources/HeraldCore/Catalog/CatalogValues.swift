// The closed sets of string values the catalog's payloads use. Decoding any other value is an error that
// names the allowed ones, which is what payload validation reports.

/// The outcome of a confirmed transaction.
public enum TransactionStatus: String, CatalogValue {
    case success
    case failed
}

/// Why a module was unloaded (PROTOCOL.md §3).
public enum UnloadReason: String, CatalogValue {
    case bye
    case disconnected
    case stopped
    case crashed
}

/// A module's health.
public enum ModuleHealth: String, CatalogValue {
    case healthy
    case degraded
    case unhealthy
}

/// What `maintenance.data` asks for.
public enum MaintenanceOperation: String, CatalogValue {
    case flush
    case cleanup
    case both
}

/// How urgent a `maintenance.data` request is.
public enum MaintenanceUrgency: String, CatalogValue {
    case low
    case medium
    case high
}

/// Why `maintenance.data` was published.
public enum MaintenanceReason: String, CatalogValue {
    case periodic
    case shutdown
    case lowDisk = "low_disk"
    case manual
}

/// The kind of a UI notification.
public enum NotificationType: String, CatalogValue {
    case info
    case success
    case warning
    case error
}

/// The operation a package event reports on.
public enum PackageOperation: String, CatalogValue {
    case install
    case update
    case remove
    case restart
}

/// Where a package operation stands.
public enum PackageStatus: String, CatalogValue {
    case started
    case progress
    case completed
    case error
}

/// The kind of a system change.
public enum SystemChangeType: String, CatalogValue {
    case restart
    case update
    case configChange = "config-change"
}
