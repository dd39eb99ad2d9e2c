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
/// without the bus's lock, so counting never serialises publishers and subscribers. They only ever grow
/// (``totals``, what the metrics count); a reset moves the base the statistics are counted from.
final class DeliveryCounters: Sendable {
    let successful = Atomic<UInt64>(0)
    let failed = Atomic<UInt64>(0)
    let channelFull = Atomic<UInt64>(0)
    /// The totals at the last reset.
    private let base = Mutex(DeliveryStatistics())

    /// Every count since the name was first seen, resets ignored.
    var totals: DeliveryStatistics {
        DeliveryStatistics(
            successful: successful.load(ordering: .relaxed),
            failed: failed.load(ordering: .relaxed),
            channelFull: channelFull.load(ordering: .relaxed)
        )
    }

    /// The counts since the last reset.
    var snapshot: DeliveryStatistics {
        let base = base.withLock { $0 }
        let totals = totals
        return DeliveryStatistics(
            successful: totals.successful - base.successful,
            failed: totals.failed - base.failed,
            channelFull: totals.channelFull - base.channelFull
        )
    }

    func reset() {
        // Read under the lock: totals only grow, so a snapshot taken after never goes below this base.
        base.withLock { $0 = totals }
    }
}
