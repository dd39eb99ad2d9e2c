#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The registry of catalog events and the payload validator the broker runs when `validate_payloads` is on.
public enum EventCatalog {
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
        guard let type = byEventType[eventType] else { return }
        guard let payload else { throw EnvelopeError(field: "payload", "required for \(eventType)") }
        do {
            _ = try decode(type, from: payload)
        } catch let error as DecodingError {
            throw envelopeError(for: error)
        } catch {
            throw EnvelopeError(field: "payload", "\(error)")
        }
    }

    static func decode<Event: CatalogEvent>(_ type: Event.Type, from payload: RawJSON) throws -> Event {
        try payload.decode(type)
    }

    /// Turns a decoding failure into the field and message of an `invalid_event` error.
    static func envelopeError(for error: DecodingError) -> EnvelopeError {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.reduce("payload") { path, key in
                if let index = key.intValue { return "\(path)[\(index)]" }
                return "\(path).\(key.stringValue)"
            }
        }
        switch error {
        case .keyNotFound(let key, let context):
            return EnvelopeError(field: path(context.codingPath + [key]), "required")
        case .valueNotFound(_, let context):
            return EnvelopeError(field: path(context.codingPath), "must not be null")
        case .typeMismatch(let type, let context):
            return EnvelopeError(field: path(context.codingPath), "must be \(describe(type))")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return EnvelopeError(field: "payload", "not valid JSON") }
            return EnvelopeError(field: path(context.codingPath), context.debugDescription)
        @unknown default:
            return EnvelopeError(field: "payload", "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object"
        }
    }
}
