import HeraldCore
import Synchronization

/// Where a new consumer group starts reading (PROTOCOL.md §4.2 `from`); a group that exists resumes after
/// its last acknowledged event whatever this says.
public enum GroupStartPosition: Sendable, Equatable {
    case latest
    case earliest
    /// This offset in every partition, inclusive.
    case offset(Int64)
    /// The first event of each partition accepted at or after this time, milliseconds since 1970.
    case time(millisecondsSinceEpoch: Int64)
}

/// One event of a durable subscription: acknowledge it with ``ack()`` once it is processed, or refuse it
/// with ``nack(delayMilliseconds:deadLetter:)``. An event neither acknowledged nor refused within the
/// subscription's `ack_wait_ms` is delivered again, `attempt` + 1 (at least once: process idempotently,
/// see ``ProcessedEvents``).
public struct HeraldDelivery: Sendable {
    public let envelope: EventEnvelope
    /// The broker's sequence number for it on the current connection.
    public let seq: UInt64
    /// 1 on the first delivery, then 2, 3, …
    public let attempt: Int
    let subscription: UInt64
    let link: ClientLink
    let client: HeraldClient

    /// Acknowledges the event. With `confirmed`, waits until the broker has recorded it in the group's
    /// state on disk. After a reconnect a delivery of the old connection cannot be acknowledged (the broker
    /// gives it to a member again): this does nothing.
    public func ack(confirmed: Bool = false) async throws {
        try await client.acknowledge(self, confirmed: confirmed) { writer, id in
            writer.ack(id: id, subscription: subscription, seqs: [seq])
        }
    }

    /// Refuses the event: it is delivered again after `delayMilliseconds` (else the group's backoff), or
    /// goes to the group's dead-letter queue with `deadLetter`.
    public func nack(delayMilliseconds: Int64? = nil, deadLetter: Bool = false) async throws {
        try await client.acknowledge(self, confirmed: false) { writer, id in
            writer.nack(
                id: id, subscription: subscription, seq: seq, delayMs: delayMilliseconds, deadLetter: deadLetter)
        }
    }
}

/// A durable subscription of a ``HeraldClient`` (PROTOCOL.md §4.2): an `AsyncSequence` of the group's
/// deliveries to this member. Nothing is dropped: the broker sends at most `max_in_flight` unacknowledged
/// events. After a reconnect the client joins the group again; what it had not acknowledged is delivered
/// again (to it or another member).
public struct HeraldDurableSubscription: AsyncSequence, Sendable {
    public typealias Element = HeraldDelivery

    /// The client's number for this subscription.
    public let id: UInt64
    public let group: String
    public let topics: [String]
    private let stream: AsyncStream<HeraldDelivery>
    let sink: Sink

    init(id: UInt64, group: String, topics: [String], stream: AsyncStream<HeraldDelivery>, sink: Sink) {
        self.id = id
        self.group = group
        self.topics = topics
        self.stream = stream
        self.sink = sink
    }

    /// Ends the subscription: the loop over it ends and the client leaves the group.
    public func cancel() {
        sink.continuation.finish()
    }

    public func makeAsyncIterator() -> AsyncStream<HeraldDelivery>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Processes each delivery once per event id: an event whose id `processed` already holds is
    /// acknowledged without calling `handle` (a redelivery of work that was done, or a duplicate); one that
    /// `handle` processes is recorded and acknowledged; one it throws on is refused (`nack`) and comes again
    /// after the backoff. Returns when the subscription ends.
    public func consume(
        skipping processed: some ProcessedEventStore,
        _ handle: (EventEnvelope) async throws -> Void
    ) async throws {
        for await delivery in self {
            let id = delivery.envelope.eventID
            if await processed.contains(id) {
                try await delivery.ack()
                continue
            }
            do {
                try await handle(delivery.envelope)
            } catch {
                try await delivery.nack()
                continue
            }
            await processed.insert(id)
            try await delivery.ack()
        }
    }

    /// Where the client's reader hands deliveries.
    final class Sink: Sendable {
        let continuation: AsyncStream<HeraldDelivery>.Continuation

        init(continuation: AsyncStream<HeraldDelivery>.Continuation) {
            self.continuation = continuation
        }
    }
}

/// Event ids a consumer has processed, for ``HeraldDurableSubscription/consume(skipping:_:)``. Keep them
/// where the consumer keeps its results (in the same transaction, ideally) to survive restarts; the
/// in-memory ``ProcessedEvents`` covers redeliveries while the process lives.
public protocol ProcessedEventStore: Sendable {
    func contains(_ eventID: String) async -> Bool
    func insert(_ eventID: String) async
}

/// The most recent `capacity` processed event ids, in memory.
public final class ProcessedEvents: ProcessedEventStore {
    private struct State {
        var ids: Set<String> = []
        var order: [String] = []
        var start = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = 100_000) {
        self.capacity = max(1, capacity)
    }

    public func contains(_ eventID: String) async -> Bool {
        state.withLock { $0.ids.contains(eventID) }
    }

    public func insert(_ eventID: String) async {
        state.withLock { state in
            guard state.ids.insert(eventID).inserted else { return }
            if state.order.count < capacity {
                state.order.append(eventID)
            } else {
                // A ring: the oldest id leaves.
                state.ids.remove(state.order[state.start])
                state.order[state.start] = eventID
                state.start = (state.start + 1) % capacity
            }
        }
    }
}
