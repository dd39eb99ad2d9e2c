import HeraldCore
import Synchronization

/// A live subscription of a ``HeraldClient``: an `AsyncSequence` of the envelopes the broker delivers for
/// its patterns, in publish order. It survives reconnects (the client subscribes again, and says so in its
/// log) and ends when it is cancelled, its loop ends, or the client closes.
///
/// Live delivery is at most once (PROTOCOL.md §4.1): what the broker dropped for this subscription shows as
/// gaps in `seq`, counted in ``droppedByBroker``; what the client dropped because the consumer fell more
/// than ``HeraldClientConfiguration/subscriptionBuffer`` events behind is counted in ``droppedByClient``.
public struct HeraldSubscription: AsyncSequence, Sendable {
    public typealias Element = EventEnvelope

    /// The client's number for this subscription (the broker's changes when the client reconnects).
    public let id: UInt64
    /// The topic patterns.
    public let topics: [String]
    private let stream: AsyncStream<EventEnvelope>
    let counters: Counters

    init(id: UInt64, topics: [String], stream: AsyncStream<EventEnvelope>, counters: Counters) {
        self.id = id
        self.topics = topics
        self.stream = stream
        self.counters = counters
    }

    /// Events the broker dropped for this subscription because its queue was full (gaps in `seq`).
    public var droppedByBroker: UInt64 { counters.droppedByBroker.load(ordering: .relaxed) }
    /// Events the client dropped because the consumer fell too far behind.
    public var droppedByClient: UInt64 { counters.droppedByClient.load(ordering: .relaxed) }

    /// Ends the subscription: the loop over it ends and the broker is told to stop delivering.
    public func cancel() {
        counters.finish()
    }

    public func makeAsyncIterator() -> AsyncStream<EventEnvelope>.Iterator {
        stream.makeAsyncIterator()
    }

    /// What the client's reader and the subscription's owner share.
    final class Counters: Sendable {
        let droppedByBroker = Atomic<UInt64>(0)
        let droppedByClient = Atomic<UInt64>(0)
        /// The last `seq` seen on the current broker subscription; 0 after a (re)subscribe.
        let lastSeq = Atomic<UInt64>(0)
        let continuation: AsyncStream<EventEnvelope>.Continuation

        init(continuation: AsyncStream<EventEnvelope>.Continuation) {
            self.continuation = continuation
        }

        /// Counts a gap before `seq` and hands the event on, counting it when the consumer is too far behind.
        func deliver(_ envelope: EventEnvelope, seq: UInt64) {
            let last = lastSeq.exchange(seq, ordering: .relaxed)
            if seq > last + 1 { droppedByBroker.add(seq - last - 1, ordering: .relaxed) }
            if case .dropped = continuation.yield(envelope) { droppedByClient.add(1, ordering: .relaxed) }
        }

        func finish() {
            continuation.finish()
        }
    }
}
