/// What one publish did, counted over the live subscriptions whose patterns (and filters) matched.
public struct PublishResult: Sendable, Hashable {
    /// Subscriptions that queued the event.
    public var delivered: Int
    /// Subscriptions that dropped an event because their queue was full: the new one under `dropNewest`,
    /// their oldest under `dropOldest` (which also counts the new event as delivered).
    public var dropped: Int

    /// A result with the given counts.
    public init(delivered: Int = 0, dropped: Int = 0) {
        self.delivered = delivered
        self.dropped = dropped
    }
}
