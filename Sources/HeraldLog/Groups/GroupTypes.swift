import Foundation
import HeraldCore

/// How a consumer group delivers (PROTOCOL.md §4.2, `[groups]`): the defaults of its members and its
/// retry policy.
public struct GroupSettings: Sendable, Equatable {
    /// How long a member may keep a delivery unacknowledged before it is delivered again.
    public var ackWaitMs: Int64
    /// Deliveries of one event before it goes to the dead-letter queue.
    public var maxDeliver: Int
    /// The waits before the second, third, … delivery; the last repeats.
    public var backoffMs: [Int64]
    /// Unacknowledged deliveries per member.
    public var maxInFlight: Int
    /// Groups whose events never go to the dead-letter queue for their attempts, however many (the RabbitMQ
    /// bridge's: it holds what it took until RabbitMQ confirms it, across outages and restarts).
    public var unlimitedAttempts: Set<String> = []

    public init(
        ackWaitMs: Int64 = 30_000, maxDeliver: Int = 4, backoffMs: [Int64] = [1000, 2000, 4000], maxInFlight: Int = 1000
    ) {
        self.ackWaitMs = ackWaitMs
        self.maxDeliver = maxDeliver
        self.backoffMs = backoffMs
        self.maxInFlight = maxInFlight
    }

    /// The attempts after which an event of group `name` goes to the dead-letter queue.
    func maxDeliver(forGroup name: String) -> Int {
        unlimitedAttempts.contains(name) ? Int.max : maxDeliver
    }

    /// The wait before the delivery that follows failed attempt number `attempt` (1 = the first).
    func backoff(afterAttempt attempt: Int) -> Int64 {
        guard !backoffMs.isEmpty else { return 0 }
        return backoffMs[min(max(attempt, 1), backoffMs.count) - 1]
    }
}

/// Where a new group starts reading (PROTOCOL.md §4.2 `from`); an existing group resumes where it was.
public enum GroupStart: Sendable, Equatable {
    /// After the last event stored when the group is made.
    case latest
    /// At the first retained event.
    case earliest
    /// At this offset in every partition (inclusive).
    case offset(Int64)
    /// At each partition's first event accepted at or after this time, milliseconds since 1970.
    case time(Int64)
}

/// One event handed to a member.
public struct GroupDelivery: Sendable {
    /// The member's sequence number for it (§2.3): counts from 1 per subscription, redeliveries included.
    public let seq: UInt64
    /// 1 on the first delivery, then 2, 3, …
    public let attempt: Int
    public let partition: Int
    public let offset: Int64
    /// When the broker accepted the event, milliseconds since 1970.
    public let timestamp: Int64
    /// The stored envelope.
    public let bytes: [UInt8]
}

/// A group's position in one partition (PROTOCOL.md §4.2 "lag").
public struct PartitionLag: Sendable, Equatable {
    public let partition: Int
    /// Every event before it is acknowledged (or dead-lettered, or skipped as not matching).
    public let committed: Int64
    /// The offset after the partition's last readable event.
    public let head: Int64
    /// `head − committed`: the events after the committed offset, matching or not.
    public var lag: Int64 { max(0, head - committed) }
    /// The age of the oldest event at or after `committed` that is not acknowledged yet; `nil` when none.
    public let oldestUnackedAgeMs: Int64?
}

/// Why a subscription cannot join a group.
public enum GroupError: Error, Equatable, CustomStringConvertible {
    /// The group exists with other topics (the first subscriber's patterns define it).
    case topicsDiffer(group: String, existing: [String])
    /// Its state could not be read or written.
    case storage(String)
    /// The groups are closed (the broker is stopping).
    case closed
    /// No group has that name.
    case notFound(String)
    /// The group has members: it is deleted only once none is left.
    case inUse(group: String, members: Int)
    /// A group of that name is being deleted: its files are going; a subscribe may come again once they are.
    case deleting(String)

    public var description: String {
        switch self {
        case .topicsDiffer(let group, let existing):
            "group '\(group)' reads topics \(existing); a member must subscribe with exactly those"
        case .storage(let message): message
        case .closed: "the consumer groups are closed"
        case .notFound(let group): "group '\(group)' does not exist"
        case .inUse(let group, let members):
            "group '\(group)' has \(members) member\(members == 1 ? "" : "s"); a group is deleted once none is left"
        case .deleting(let group): "group '\(group)' is being deleted; subscribe again once it is"
        }
    }
}

/// The clocks a group reads: a monotonic one for deadlines and the wall clock for event ages, both in
/// milliseconds. Tests pass their own.
public struct GroupClock: Sendable {
    public var monotonic: @Sendable () -> Int64
    public var wall: @Sendable () -> Int64

    public init(monotonic: @escaping @Sendable () -> Int64, wall: @escaping @Sendable () -> Int64) {
        self.monotonic = monotonic
        self.wall = wall
    }

    private static let origin = ContinuousClock.now

    public static let system = GroupClock(
        monotonic: {
            (ContinuousClock.now - origin).wholeMilliseconds
        },
        wall: { Int64(Date().timeIntervalSince1970 * 1000) }
    )
}
