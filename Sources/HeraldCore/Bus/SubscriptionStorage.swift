import DequeModule
import Synchronization

/// One live subscription as the bus routes to it: its patterns and options, and its queue behind a lock.
///
/// Locks, not actors, on the hot path (ARCHITECTURE.md): every method takes the lock once, decides through
/// ``SubscriptionStateMachine``, and resumes continuations and updates counters after releasing it.
final class SubscriptionStorage: Sendable, Hashable {
    let id: UInt64
    let subscriber: String
    let patterns: [TopicPattern]
    let filter: (@Sendable (EventEnvelope) -> Bool)?
    let counters: DeliveryCounters
    private let state: StateLock<SubscriptionStateMachine>
    /// The sequence number of the last event queued, stored after each enqueue. A consumer that found the
    /// queue empty watches it without taking the lock, so polling does not contend with publishers.
    private let queuedMark = Atomic<UInt64>(0)
    /// The sequence number of the last event the consumer took; written by the consumer only.
    private let takenMark = Atomic<UInt64>(0)
    /// Set by ``finish()``: read without the lock by an iterator handing out a batch it already took.
    private let ended = Atomic<Bool>(false)

    /// Whether the subscription has ended (cancelled, unsubscribed, or its consumer gone).
    var hasEnded: Bool { ended.load(ordering: .relaxed) }

    init(
        id: UInt64,
        subscriber: String,
        patterns: [TopicPattern],
        buffer: Int,
        overflow: OverflowPolicy,
        limit: Int?,
        filter: (@Sendable (EventEnvelope) -> Bool)?,
        counters: DeliveryCounters
    ) {
        self.id = id
        self.subscriber = subscriber
        self.patterns = patterns
        self.filter = filter
        self.counters = counters
        self.state = StateLock(SubscriptionStateMachine(capacity: buffer, overflow: overflow, limit: limit))
    }

    /// How many times a consumer that found its queue empty yields its thread and looks again before it
    /// parks. Tuned with `make bench` (docs/benchmarks.md).
    static let yieldsBeforeParking = 8
    /// A consumer that sees fewer than this many new events yields (up to `yieldsForSmallBatch` times)
    /// before taking the lock, so that it takes batches instead of contending with the publisher event by
    /// event. Tuned with `make bench` (docs/benchmarks.md).
    static let smallBatch: UInt64 = 32
    static let yieldsForSmallBatch = 2

    enum EnqueueOutcome {
        case delivered
        case deliveredLast
        case deliveredEvicting
        case dropped
        case closed
    }

    /// Lets the queue hold `count` events more than its capacity until the consumer next drains it.
    func allowBeyondBuffer(_ count: Int) {
        state.withLock { $0.allowBeyondCapacity(count) }
    }

    /// Offers `envelope` to the queue. Never blocks beyond the short critical section.
    func enqueue(_ envelope: EventEnvelope) -> EnqueueOutcome {
        switch state.withLock({ $0.enqueue(envelope) }) {
        case .queued(let seq, let resume):
            queuedMark.store(seq, ordering: .releasing)
            resume?.resume()
            return .delivered
        case .queuedLast(let seq, let resume):
            queuedMark.store(seq, ordering: .releasing)
            resume?.resume()
            return .deliveredLast
        case .queuedEvicting(let seq):
            queuedMark.store(seq, ordering: .releasing)
            counters.channelFull.add(1, ordering: .relaxed)
            return .deliveredEvicting
        case .droppedNewest:
            counters.channelFull.add(1, ordering: .relaxed)
            return .dropped
        case .closed:
            return .closed
        }
    }

    /// Waits until events are queued and moves all of them into `buffer` (replacing what it held); returns
    /// `false` when the subscription has ended or the task is cancelled, in which case `onCancel` has run.
    /// The caller counts what it delivers (``recordDelivered(_:)``, ``recordFailed(_:)``).
    func nextBatch(
        into buffer: inout Deque<SubscriptionDelivery>,
        onCancel: @escaping @Sendable () -> Void
    ) async -> Bool {
        buffer.removeAll(keepingCapacity: true)
        var emptyChecks = 0
        var patience = 0
        while true {
            // A cancelled consumer stops here even while events keep arriving; the handler below only
            // covers a consumer that is parked.
            if Task.isCancelled {
                onCancel()
                return false
            }
            let mark = queuedMark.load(ordering: .acquiring)
            let taken = takenMark.load(ordering: .relaxed)
            if mark &- taken < Self.smallBatch && mark != taken && patience < Self.yieldsForSmallBatch {
                // A few events are waiting: let the publisher add more before taking the lock, so the
                // consumer does not contend with it event by event.
                patience += 1
                await Task.yield()
                continue
            }
            switch state.withLock({ $0.drain(into: &buffer) }) {
            case .drained:
                if let last = buffer.last { takenMark.store(last.seq, ordering: .relaxed) }
                return true
            case .ended:
                return false
            case .empty where emptyChecks < Self.yieldsBeforeParking:
                // Parking costs the publisher a thread wake-up per event when the subscriber is the faster
                // side; yielding a few times first lets a burst accumulate and be taken as one batch.
                repeat {
                    emptyChecks += 1
                    await Task.yield()
                } while queuedMark.load(ordering: .acquiring) == mark && emptyChecks < Self.yieldsBeforeParking
            case .empty:
                emptyChecks = 0
                await withTaskCancellationHandler {
                    await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                        if state.withLock({ $0.suspend(.task(continuation)) }) { continuation.resume() }
                    }
                } onCancel: {
                    onCancel()
                }
            }
        }
    }

    enum TakeResult {
        /// Events were moved into the buffer.
        case taken
        /// Nothing was queued; `whenReady` will be called (once, from a publisher's thread) when there is.
        case waiting
        /// The subscription has ended.
        case ended
    }

    /// Moves every queued event into `buffer` (replacing what it held) without waiting; when nothing is
    /// queued, registers `whenReady` to be called once something is (or the subscription ends).
    func takeBatch(into buffer: inout Deque<SubscriptionDelivery>, whenReady: @escaping @Sendable () -> Void)
        -> TakeResult
    {
        buffer.removeAll(keepingCapacity: true)
        while true {
            switch state.withLock({ $0.drain(into: &buffer) }) {
            case .drained:
                if let last = buffer.last { takenMark.store(last.seq, ordering: .relaxed) }
                return .taken
            case .ended:
                return .ended
            case .empty:
                // Parked unless something arrived (or the end came) between the drain and now.
                if !state.withLock({ $0.suspend(.callback(whenReady)) }) { return .waiting }
            }
        }
    }

    /// Counts `count` events as handed to the subscriber.
    func recordDelivered(_ count: Int) {
        if count > 0 { counters.successful.add(UInt64(count), ordering: .relaxed) }
    }

    /// Counts `count` events taken from the queue that never reached the subscriber.
    func recordFailed(_ count: Int) {
        if count > 0 { counters.failed.add(UInt64(count), ordering: .relaxed) }
    }

    /// Whether a consumer is parked waiting for events (for tests that must reach that state).
    var hasParkedConsumer: Bool {
        state.withLock { $0.hasWaiter }
    }

    /// Ends the subscription, counting what was still queued as `failed`. Safe to call more than once.
    func finish() {
        let (discarded, resume) = state.withLock { $0.finish() }
        ended.store(true, ordering: .relaxed)
        if discarded > 0 { counters.failed.add(UInt64(discarded), ordering: .relaxed) }
        resume?.resume()
    }

    static func == (lhs: SubscriptionStorage, rhs: SubscriptionStorage) -> Bool { lhs === rhs }

    func hash(into hasher: inout Hasher) { hasher.combine(id) }
}
