import DequeModule

/// A live subscription to an ``EventBus``: an `AsyncSequence` of the events its patterns match, in publish
/// order, through a bounded queue that never makes a publisher wait.
///
/// It ends, and leaves the bus, when its loop ends, when the iterating task is cancelled, when ``cancel()``
/// is called, when the bus removes it (``EventBus/unsubscribeAll(subscriber:)``), after its one event for
/// ``EventBus/once(_:subscriber:filter:)``, or when the last reference to it goes. One iterator at a time.
public final class Subscription: AsyncSequence, Sendable {
    public typealias Element = EventEnvelope
    public typealias Failure = Never

    let storage: SubscriptionStorage
    private let bus: EventBus

    init(storage: SubscriptionStorage, bus: EventBus) {
        self.storage = storage
        self.bus = bus
    }

    deinit {
        bus.remove(storage)
    }

    /// The bus-wide id of this subscription.
    public var id: UInt64 { storage.id }
    /// The subscriber name its statistics are counted under.
    public var subscriber: String { storage.subscriber }
    /// The patterns it matches.
    public var patterns: [TopicPattern] { storage.patterns }

    /// Ends the subscription: it leaves the bus, queued events count as `failed`, and the sequence ends.
    public func cancel() {
        bus.remove(storage)
    }

    /// Waits for queued events and moves all of them, with their sequence numbers, into `buffer`; returns
    /// `false` once the subscription has ended. This is the batch interface the broker's connection writers
    /// use; the iterator is built on it.
    package func nextBatch(into buffer: inout Deque<SubscriptionDelivery>) async -> Bool {
        let ended = !(await storage.nextBatch(into: &buffer) { [self] in cancel() })
        if ended { cancel() }
        return !ended
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(subscription: self)
    }

    /// Takes a whole batch of queued events under one lock acquisition and hands them out one by one.
    public struct Iterator: AsyncIteratorProtocol {
        private let subscription: Subscription
        private let lifetime: IteratorLifetime
        private var batch = Deque<SubscriptionDelivery>()

        init(subscription: Subscription) {
            self.subscription = subscription
            self.lifetime = IteratorLifetime(subscription)
        }

        public mutating func next() async -> EventEnvelope? {
            await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> EventEnvelope? {
            if let delivery = batch.popFirst() { return delivery.envelope }
            guard await subscription.nextBatch(into: &batch) else { return nil }
            return batch.popFirst()?.envelope
        }
    }
}

@available(*, unavailable)
extension Subscription.Iterator: Sendable {}

/// Ends the subscription when the iterator goes away, which is what ending a `for await` loop does.
private final class IteratorLifetime {
    private let subscription: Subscription

    init(_ subscription: Subscription) {
        self.subscription = subscription
    }

    deinit {
        subscription.cancel()
    }
}
