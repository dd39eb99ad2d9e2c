/// One event as queued for one subscription, with its sequence number there.
public struct SubscriptionDelivery: Sendable {
    /// Counts from 1 per subscription over every event the subscription matched, delivered or dropped, so a
    /// gap tells the subscriber how many it missed (PROTOCOL.md §2.3, §9).
    public let seq: UInt64
    /// The event.
    public let envelope: EventEnvelope
}
