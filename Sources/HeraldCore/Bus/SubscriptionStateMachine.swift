import DequeModule

/// The state of one live subscription's bounded queue: pure decisions, no locking and no resuming.
///
/// ``SubscriptionStorage`` holds it in a ``StateLock`` and carries out the returned actions (resuming a waiting
/// consumer, counting) after releasing the lock.
struct SubscriptionStateMachine: ~Copyable {
    private enum Phase {
        /// Accepting events.
        case open
        /// Accepting no more events; what is queued is still delivered, then the sequence ends.
        case draining
        /// Ended; the queue is empty.
        case finished
    }

    private let capacity: Int
    private let evictsOldest: Bool
    private var phase = Phase.open
    private var queue: Deque<SubscriptionDelivery>
    private var lastSeq: UInt64 = 0
    /// Events still to accept before draining (for `once`); `nil` for no limit.
    private var remaining: Int?
    private var waiter: SubscriptionWaiter?
    /// Room beyond `capacity` until the consumer next drains the queue (``allowBeyondCapacity(_:)``).
    private var extra = 0

    init(capacity: Int, overflow: OverflowPolicy, limit: Int?) {
        self.capacity = capacity
        self.evictsOldest = overflow.evictsOldest
        self.remaining = limit
        // Room for a first burst without regrowing; the consumer's batch buffer is swapped in afterwards.
        self.queue = Deque(minimumCapacity: Swift.min(capacity, 64))
    }

    enum EnqueueAction {
        /// Queued as `seq`; resume the waiting consumer if there is one.
        case queued(seq: UInt64, resume: SubscriptionWaiter?)
        /// Queued as `seq` and the limit is reached: stop routing to this subscription.
        case queuedLast(seq: UInt64, resume: SubscriptionWaiter?)
        /// Queued as `seq` after evicting the oldest queued event.
        case queuedEvicting(seq: UInt64)
        /// The queue was full and the event was dropped.
        case droppedNewest
        /// The subscription accepts no more events; the event is not counted for it.
        case closed
    }

    mutating func enqueue(_ envelope: EventEnvelope) -> EnqueueAction {
        guard case .open = phase else { return .closed }
        lastSeq += 1
        if queue.count >= capacity + extra {
            guard evictsOldest else { return .droppedNewest }
            queue.removeFirst()
            queue.append(SubscriptionDelivery(seq: lastSeq, envelope: envelope))
            // A full queue has no waiting consumer: it would have drained it.
            return .queuedEvicting(seq: lastSeq)
        }
        queue.append(SubscriptionDelivery(seq: lastSeq, envelope: envelope))
        let resume = waiter
        waiter = nil
        if let limit = remaining {
            remaining = limit - 1
            if limit == 1 {
                phase = .draining
                return .queuedLast(seq: lastSeq, resume: resume)
            }
        }
        return .queued(seq: lastSeq, resume: resume)
    }

    /// Lets the queue hold `count` events more than its capacity until the consumer next drains it (the
    /// broker's replay of `module.loaded` to a module that has not read anything yet).
    mutating func allowBeyondCapacity(_ count: Int) {
        extra += count
    }

    enum DrainAction {
        /// `count` events moved into the consumer's buffer.
        case drained(count: Int)
        /// Nothing queued: the consumer should wait.
        case empty
        /// The sequence is over.
        case ended
    }

    /// Moves everything queued into `buffer` (which must be empty) by swapping storage, so a consumer takes
    /// a whole batch under one lock acquisition and neither side reallocates in the steady state.
    mutating func drain(into buffer: inout Deque<SubscriptionDelivery>) -> DrainAction {
        if !queue.isEmpty {
            swap(&queue, &buffer)
            extra = 0
            return .drained(count: buffer.count)
        }
        switch phase {
        case .open: return .empty
        case .draining, .finished:
            phase = .finished
            return .ended
        }
    }

    /// Parks the consumer; returns `true` if it must be resumed at once because something arrived or the
    /// subscription ended after it last looked.
    mutating func suspend(_ waiter: SubscriptionWaiter) -> Bool {
        if !queue.isEmpty || phase != .open { return true }
        precondition(self.waiter == nil, "a Subscription supports one iterator at a time")
        self.waiter = waiter
        return false
    }

    var hasWaiter: Bool { waiter != nil }

    /// Ends the subscription now, discarding what is queued; returns the number discarded and the consumer
    /// to resume.
    mutating func finish() -> (discarded: Int, resume: SubscriptionWaiter?) {
        guard phase != .finished else { return (0, nil) }
        phase = .finished
        let discarded = queue.count
        queue.removeAll()
        let resume = waiter
        waiter = nil
        return (discarded, resume)
    }
}

/// A consumer waiting for a subscription's next events: a parked task, or a callback (the broker's
/// connections, which drain on their event loop instead of in a task).
enum SubscriptionWaiter {
    case task(UnsafeContinuation<Void, Never>)
    case callback(@Sendable () -> Void)

    /// Wakes the consumer; called outside the lock.
    func resume() {
        switch self {
        case .task(let continuation): continuation.resume()
        case .callback(let callback): callback()
        }
    }
}
