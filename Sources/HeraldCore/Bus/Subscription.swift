import DequeModule

/// A live subscription to an ``EventBus``: an `AsyncSequence` of the events its patterns match, in publish
/// order, through a bounded queue that never makes a publisher wait.
///
/// It ends, and leaves the bus, when its loop ends, when the iterating task is cancelled, when ``cancel()``
/// is called, when the bus removes it (``EventBus/unsubscribeAll(subscriber:)``), after its one event for
/// ``EventBus/once(_:subscriber:filter:)``, or when the last reference to it goes. One iterator at a time.
public final class Subscription: AsyncSequence, Sendable {
    /// Each element is one event.
    public typealias Element = EventEnvelope
    /// A subscription ends; it never fails.
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

    /// Ends the subscription: it leaves the bus, queued events count as `failed`, and the sequence ends —
    /// at once, even in the middle of a batch its iterator took (the rest of that batch counts as `failed`).
    public func cancel() {
        bus.remove(storage)
    }

    /// Whether the subscription has ended.
    var hasEnded: Bool { storage.hasEnded }

    /// Waits for queued events and moves all of them, with their sequence numbers, into `buffer`; returns
    /// `false` once the subscription has ended. This is the batch interface the broker's connection writers
    /// use; the iterator is built on it. The caller reports what it delivered with ``recordDelivered(_:)``
    /// and what it took but could not deliver with ``recordFailed(_:)``.
    package func nextBatch(into buffer: inout Deque<SubscriptionDelivery>) async -> Bool {
        let ended = !(await storage.nextBatch(into: &buffer) { [self] in cancel() })
        if ended { cancel() }
        return !ended
    }

    /// What ``takeBatch(into:whenReady:)`` found.
    package enum BatchState {
        /// Events were moved into the buffer.
        case taken
        /// Nothing was queued; `whenReady` will be called once when something is.
        case waiting
        /// The subscription has ended.
        case ended
    }

    /// Moves every queued event into `buffer` without waiting, for a consumer that is not a task (the
    /// broker's connections drain on their event loop): when nothing is queued it registers `whenReady`,
    /// called once, from a publisher's thread, when events arrive or the subscription ends.
    package func takeBatch(
        into buffer: inout Deque<SubscriptionDelivery>,
        whenReady: @escaping @Sendable () -> Void
    ) -> BatchState {
        switch storage.takeBatch(into: &buffer, whenReady: whenReady) {
        case .taken: return .taken
        case .waiting: return .waiting
        case .ended:
            cancel()
            return .ended
        }
    }

    /// Queues `envelope` for this subscription alone, as if it had been published and matched only here:
    /// the broker replays `module.loaded` events to a newly loaded module this way (PROTOCOL.md §3).
    package func offer(_ envelope: EventEnvelope) {
        _ = storage.enqueue(envelope)
    }

    /// Lets the queue hold `count` events more than its buffer until the consumer next takes what is
    /// queued: room for a replay the subscriber could not have read yet.
    package func allowBeyondBuffer(_ count: Int) {
        storage.allowBeyondBuffer(count)
    }

    /// Counts `count` events as delivered to the subscriber (`successful`).
    package func recordDelivered(_ count: Int) {
        storage.recordDelivered(count)
    }

    /// Counts `count` taken events that never reached the subscriber (`failed`).
    package func recordFailed(_ count: Int) {
        storage.recordFailed(count)
    }

    /// Makes the iterator; a subscription supports one iterator at a time.
    public func makeAsyncIterator() -> Iterator {
        Iterator(subscription: self)
    }

    /// Takes a whole batch of queued events under one lock acquisition and hands them out one by one.
    public struct Iterator: AsyncIteratorProtocol {
        private let state: IteratorState

        init(subscription: Subscription) {
            state = IteratorState(subscription)
        }

        /// The next event, waiting for one if none is queued; `nil` once the subscription has ended.
        public mutating func next() async -> EventEnvelope? {
            await next(isolation: nil)
        }

        /// The next event, waiting for one if none is queued; `nil` once the subscription has ended.
        public mutating func next(isolation actor: isolated (any Actor)?) async -> EventEnvelope? {
            // The per-event path stays synchronous; only refilling the batch awaits.
            if let envelope = state.takeFromBatch() { return envelope }
            return await state.refill(isolation: actor)
        }
    }
}

/// The iterator's batch, and the counting that goes with it. A class so that its `deinit` (the end of a
/// `for await` loop) can count what was left and end the subscription.
private final class IteratorState {
    private let subscription: Subscription
    // Only the one iterator owning this object touches these, never concurrently; dynamic exclusivity
    // checks on them would cost more than the rest of handing out an event.
    @exclusivity(unchecked) private var batch = Deque<SubscriptionDelivery>()
    /// Events of the current batch handed out and not yet counted as `successful`.
    @exclusivity(unchecked) private var handedOut = 0

    init(_ subscription: Subscription) {
        self.subscription = subscription
    }

    /// The next event of the batch in hand, if any; `nil` also when the task is cancelled, which ends the
    /// subscription at once (as AsyncStream does), or when the subscription was cancelled or unsubscribed,
    /// counting the rest of the batch as `failed` either way.
    func takeFromBatch() -> EventEnvelope? {
        if Task.isCancelled || subscription.hasEnded {
            subscription.recordFailed(batch.count)
            batch.removeAll()
            return nil
        }
        guard let delivery = batch.popFirst() else { return nil }
        handedOut += 1
        return delivery.envelope
    }

    /// Counts the batch just handed out and waits for the next one; runs on the caller's isolation, so the
    /// non-`Sendable` state never crosses to another domain.
    func refill(isolation actor: isolated (any Actor)?) async -> EventEnvelope? {
        // Counted per batch, not per event, to keep atomics off the per-event path.
        subscription.recordDelivered(handedOut)
        handedOut = 0
        guard await subscription.nextBatch(into: &batch) else { return nil }
        return takeFromBatch()
    }

    deinit {
        subscription.recordDelivered(handedOut)
        subscription.recordFailed(batch.count)
        subscription.cancel()
    }
}

@available(*, unavailable)
extension Subscription.Iterator: Sendable {}
