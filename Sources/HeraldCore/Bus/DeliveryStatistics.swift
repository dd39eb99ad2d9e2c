import Synchronization

/// Delivery counts of one subscriber name, over all its live subscriptions (PROTOCOL.md §4.1, §5).
public struct DeliveryStatistics: Sendable, Hashable, Codable {
    /// Events handed to the subscriber: taken by its iterator in process, written to its connection by the
    /// broker.
    public var successful: UInt64
    /// Events still queued when their subscription ended.
    public var failed: UInt64
    /// Events dropped because a queue was full (the new event under drop-newest, an evicted one under
    /// drop-oldest).
    public var channelFull: UInt64

    /// Statistics with the given counts.
    public init(successful: UInt64 = 0, failed: UInt64 = 0, channelFull: UInt64 = 0) {
        self.successful = successful
        self.failed = failed
        self.channelFull = channelFull
    }

    enum CodingKeys: String, CodingKey {
        case successful
        case failed
        case channelFull = "channel_full"
    }
}

/// The live counters behind ``DeliveryStatistics``: shared by every subscription of one name and updated
/// without the bus's lock, so counting never serialises publishers and subscribers.
final class DeliveryCounters: Sendable {
    let successful = Atomic<UInt64>(0)
    let failed = Atomic<UInt64>(0)
    let channelFull = Atomic<UInt64>(0)

    var snapshot: DeliveryStatistics {
        DeliveryStatistics(
            successful: successful.load(ordering: .relaxed),
            failed: failed.load(ordering: .relaxed),
            channelFull: channelFull.load(ordering: .relaxed)
        )
    }

    func reset() {
        successful.store(0, ordering: .relaxed)
        failed.store(0, ordering: .relaxed)
        channelFull.store(0, ordering: .relaxed)
    }
}
