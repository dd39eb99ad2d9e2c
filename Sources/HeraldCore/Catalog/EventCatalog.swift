#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The registry of catalog events and the payload validator the broker runs when `validate_payloads` is on.
public enum EventCatalog: Sendable {
    /// Every catalog type, in the order of `docs/events.md`.
    public static let all: [any CatalogEvent.Type] = [
        BlockNew.self, BlockDisconnected.self, ChainReorg.self, TransactionPending.self, TransactionConfirmed.self,
        TokenTransfer.self, ContractVerified.self, ChainSync.self,
        GovernanceProposalCreated.self, GovernanceProposalVoted.self, GovernanceProposalMerged.self,
        GovernanceForkDetected.self,
        PeerConnected.self, PeerDisconnected.self, PeerBanned.self, NetworkMessageReceived.self,
        NetworkBroadcastStarted.self, NetworkBroadcastCompleted.self,
        ModuleLoaded.self, ModuleUnloaded.self, ModuleReloaded.self, ModuleCrashed.self, ModuleHealthChanged.self,
        NodeStartupCompleted.self, NodeShutdown.self, NodeShutdownCompleted.self, ConfigLoaded.self,
        MaintenanceData.self, MaintenanceStarted.self, MaintenanceCompleted.self, HealthCheck.self,
        ResourceDiskSpaceLow.self, ResourceLimitWarning.self,
        PlatformNotification.self, PackageInstall.self, PackageUpdate.self, PackageRemove.self,
        SystemRestart.self, SystemUpdate.self, ConfigChanged.self, ValidatorStatus.self, ChainData.self,
    ]

    /// The event types of EVENTS.md's "Module and node lifecycle (published by the broker itself)": a broker
    /// refuses them from its clients, whose subscribers trust them to say what the broker saw.
    public static let publishedByTheBroker: Set<String> = Set(
        [
            ModuleLoaded.self, ModuleUnloaded.self, ModuleReloaded.self, ModuleCrashed.self, ModuleHealthChanged.self,
            NodeStartupCompleted.self, NodeShutdown.self, NodeShutdownCompleted.self, ConfigLoaded.self,
        ].map { ($0 as any CatalogEvent.Type).eventType })

    /// Whether `eventType` is one of ``publishedByTheBroker``; a look at its first byte first, since every
    /// publish asks and almost none is one of them.
    public static func isPublishedByTheBroker(_ eventType: String) -> Bool {
        switch eventType.utf8.first {
        case UInt8(ascii: "m"), UInt8(ascii: "n"), UInt8(ascii: "c"): publishedByTheBroker.contains(eventType)
        default: false
        }
    }

    private static let byEventType: [String: any CatalogEvent.Type] = Dictionary(
        uniqueKeysWithValues: all.map { ($0.eventType, $0) }
    )

    /// The `event_type` of every catalog event.
    public static var eventTypes: [String] { all.map { $0.eventType } }

    /// The catalog type published under `eventType`, if there is one.
    public static func type(for eventType: String) -> (any CatalogEvent.Type)? {
        byEventType[eventType]
    }

    /// Checks that an event of a catalog type carries a payload with the catalog's required fields and
    /// types; events of other types pass unchecked. The error is the `invalid_event` the broker sends.
    public static func validatePayload(of envelope: EventEnvelope) throws(EnvelopeError) {
        try validatePayload(envelope.payload, eventType: envelope.eventType)
    }

    /// Checks `payload` against the catalog entry of `eventType`, if there is one.
    public static func validatePayload(_ payload: RawJSON?, eventType: String) throws(EnvelopeError) {
        guard let schema = schemas[eventType] else { return }
        guard let payload else { throw EnvelopeError(field: "payload", "required for \(eventType)") }
        try PayloadValidator(schema: schema).validate(payload)
    }
}
