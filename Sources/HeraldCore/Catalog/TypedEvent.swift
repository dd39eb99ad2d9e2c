/// A catalog event as received: its envelope and its decoded payload.
public struct TypedEvent<Event: CatalogEvent>: Sendable {
    /// The event's envelope, with its id, timestamp, chain and metadata.
    public let envelope: EventEnvelope
    /// The payload, decoded.
    public let payload: Event

    /// Decodes the payload of `envelope` as `Event`.
    public init(_ envelope: EventEnvelope) throws {
        guard envelope.eventType == Event.eventType else {
            throw EnvelopeError(field: "event_type", "is \(envelope.eventType), not \(Event.eventType)")
        }
        guard let payload = envelope.payload else { throw EnvelopeError(field: "payload", "required") }
        self.envelope = envelope
        self.payload = try payload.decode(Event.self)
    }
}

extension EventEnvelope {
    /// Makes the envelope of a catalog event, its payload encoded with `JSONEncoder`.
    public init<Event: CatalogEvent>(
        _ event: Event,
        chainID: Int64? = nil,
        eventID: String? = nil,
        key: String? = nil,
        metadata: Metadata = [:]
    ) throws(EnvelopeError) {
        try self.init(
            eventType: Event.eventType,
            eventID: eventID,
            chainID: chainID,
            key: key,
            payload: try RawJSON(encoding: event),
            metadata: metadata
        )
    }
}
