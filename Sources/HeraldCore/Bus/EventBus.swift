import Synchronization

/// The typed in-process event bus: publish events, subscribe to topic patterns, count deliveries.
///
/// `publish` never blocks: each matching subscription has its own bounded queue with an overflow policy.
/// Routing goes through a ``TopicTrie`` of patterns, with the result cached per topic until the set of
/// subscriptions changes, so a publish to a known topic costs one dictionary lookup plus one short critical
/// section per matching subscription.
public final class EventBus: Sendable {
    /// Live queue bounds, as PROTOCOL.md §4.1 sets them.
    public static let bufferRange = 1...100_000
    /// The subscriber name used when none is given.
    public static let anonymousSubscriber = "anonymous"
    /// How many topics' routes are cached before the cache starts over.
    static let routeCacheLimit = 8192
    /// How many subscriptions the cached routes may name in all before the cache starts over: with ten
    /// thousand WebSockets on `#`, 8192 routes would hold 80 million references (640 MB). About 8 MB.
    static let routeCacheEntryLimit = 1 << 20

    private let routing: StateLock<Routing>

    /// Makes an empty bus.
    /// A bus that keeps the statistics of at most `statisticsLimit` subscriber names (see
    /// ``Routing/noteName(_:)``).
    public init(statisticsLimit: Int = EventBus.statisticsLimit) {
        routing = StateLock(Routing(statisticsLimit: statisticsLimit))
    }

    /// The most subscriber names whose statistics are kept: past it, the names that have gone longest
    /// without a subscription or a `hello` are forgotten, so that clients making up names cannot grow the
    /// broker's memory (and its metrics) without bound.
    public static let statisticsLimit = 10_000

    // MARK: Publishing

    /// Offers `envelope` to every live subscription whose patterns and filter match its topic.
    @discardableResult
    public func publish(_ envelope: EventEnvelope) -> PublishResult {
        let targets = routing.withLock { $0.route(envelope.topic) }
        var result = PublishResult()
        for target in targets {
            if let filter = target.filter, !filter(envelope) { continue }
            switch target.enqueue(envelope) {
            case .delivered:
                result.delivered += 1
            case .deliveredLast:
                // Its limit is reached: stop routing to it, but leave the queued event for its consumer.
                result.delivered += 1
                _ = routing.withLock { $0.remove(target) }
            case .deliveredEvicting:
                result.delivered += 1
                result.dropped += 1
            case .dropped:
                result.dropped += 1
            case .closed:
                continue
            }
        }
        return result
    }

    // MARK: Subscribing

    /// Subscribes to the events whose topics match any of `patterns`.
    ///
    /// - Parameters:
    ///   - subscriber: the name statistics are counted under; many subscriptions may share it.
    ///   - buffer: how many events may wait for this subscription (1 to 100 000).
    ///   - overflow: what happens to a new event when the buffer is full.
    ///   - filter: runs on the publisher's task for each matching event; only events it accepts are queued
    ///     (and given a sequence number). Keep it cheap.
    public func subscribe(
        _ patterns: [TopicPattern],
        subscriber: String = EventBus.anonymousSubscriber,
        buffer: Int = 100,
        overflow: OverflowPolicy = .dropNewest,
        filter: (@Sendable (EventEnvelope) -> Bool)? = nil
    ) throws(SubscriptionError) -> Subscription {
        try subscribe(patterns, subscriber: subscriber, buffer: buffer, overflow: overflow, limit: nil, filter: filter)
    }

    /// Subscribes to the events whose topics match any of `patterns`, given as text.
    public func subscribe(
        _ patterns: [String],
        subscriber: String = EventBus.anonymousSubscriber,
        buffer: Int = 100,
        overflow: OverflowPolicy = .dropNewest,
        filter: (@Sendable (EventEnvelope) -> Bool)? = nil
    ) throws(SubscriptionError) -> Subscription {
        try subscribe(
            try Self.parse(patterns),
            subscriber: subscriber,
            buffer: buffer,
            overflow: overflow,
            limit: nil,
            filter: filter
        )
    }

    /// A subscription that takes the first matching event and then ends; await it with `first(where:)`
    /// or a `for await` loop. It is registered when this returns, so a publish that follows is seen.
    public func once(
        _ patterns: [TopicPattern],
        subscriber: String = EventBus.anonymousSubscriber,
        filter: (@Sendable (EventEnvelope) -> Bool)? = nil
    ) throws(SubscriptionError) -> Subscription {
        try subscribe(patterns, subscriber: subscriber, buffer: 1, overflow: .dropNewest, limit: 1, filter: filter)
    }

    /// ``once(_:subscriber:filter:)`` with the patterns given as text.
    public func once(
        _ patterns: [String],
        subscriber: String = EventBus.anonymousSubscriber,
        filter: (@Sendable (EventEnvelope) -> Bool)? = nil
    ) throws(SubscriptionError) -> Subscription {
        try once(try Self.parse(patterns), subscriber: subscriber, filter: filter)
    }

    func subscribe(
        _ patterns: [TopicPattern],
        subscriber: String,
        buffer: Int,
        overflow: OverflowPolicy,
        limit: Int?,
        filter: (@Sendable (EventEnvelope) -> Bool)?
    ) throws(SubscriptionError) -> Subscription {
        guard !patterns.isEmpty else { throw .invalidRequest("topics: at least one pattern is required") }
        guard Self.bufferRange.contains(buffer) else {
            throw .invalidRequest(
                "buffer: must be from \(Self.bufferRange.lowerBound) to \(Self.bufferRange.upperBound)")
        }
        let storage = routing.withLock { routing in
            routing.add(
                subscriber: subscriber,
                patterns: patterns,
                buffer: buffer,
                overflow: overflow,
                limit: limit,
                filter: filter
            )
        }
        return Subscription(storage: storage, bus: self)
    }

    private static func parse(_ patterns: [String]) throws(SubscriptionError) -> [TopicPattern] {
        var parsed: [TopicPattern] = []
        parsed.reserveCapacity(patterns.count)
        for text in patterns {
            do {
                parsed.append(try TopicPattern(text))
            } catch {
                throw .invalidTopic(error)
            }
        }
        return parsed
    }

    // MARK: Removing

    /// Removes every subscription of `subscriber`; returns how many there were.
    @discardableResult
    public func unsubscribeAll(subscriber: String) -> Int {
        removeAll { $0.subscriber == subscriber }
    }

    /// Removes every subscription that has `pattern` among its patterns; returns how many there were.
    @discardableResult
    public func unsubscribeAll(pattern: TopicPattern) -> Int {
        removeAll { $0.patterns.contains(pattern) }
    }

    func remove(_ storage: SubscriptionStorage) {
        _ = routing.withLock { $0.remove(storage) }
        // Finish even if routing had already dropped it (a `once` that got its event): finishing is
        // idempotent and counts whatever its consumer never took as failed.
        storage.finish()
    }

    private func removeAll(where predicate: (SubscriptionStorage) -> Bool) -> Int {
        let removed = routing.withLock { routing in
            let matching = routing.subscriptions.values.filter(predicate)
            for storage in matching { _ = routing.remove(storage) }
            return matching
        }
        for storage in removed { storage.finish() }
        return removed.count
    }

    // MARK: Inspecting

    /// A subscription id no subscription of this bus has or will have, for subscriptions kept elsewhere
    /// (a broker's durable group subscriptions share the id space of its live ones).
    public func reserveSubscriptionID() -> UInt64 {
        routing.withLock { routing in
            defer { routing.nextID += 1 }
            return routing.nextID
        }
    }

    /// The names of the subscribers with a live subscription that matches events of `eventType`, with or
    /// without a chain id, sorted.
    public func subscribers(for eventType: String) -> [String] {
        let all = routing.withLock { Array($0.subscriptions.values) }
        let names = Set(all.filter { $0.patterns.contains { $0.matches(eventType: eventType) } }.map(\.subscriber))
        return names.sorted()
    }

    /// How many live subscriptions the bus holds.
    public var subscriptionCount: Int {
        routing.withLock { $0.subscriptions.count }
    }

    /// The subscriptions the cached routes name, in all (bounded by ``routeCacheEntryLimit``).
    var cachedRouteEntries: Int {
        routing.withLock { $0.routeEntries }
    }

    // MARK: Statistics

    /// The delivery statistics of `subscriber`, or `nil` if no subscription ever had that name.
    public func deliveryStatistics(for subscriber: String) -> DeliveryStatistics? {
        routing.withLock { $0.counters[subscriber] }?.snapshot
    }

    /// The delivery statistics of every subscriber name ever seen.
    public func allDeliveryStatistics() -> [String: DeliveryStatistics] {
        routing.withLock { $0.counters }.mapValues(\.snapshot)
    }

    /// Every delivery count of every subscriber name ever seen, as if never reset: what the metrics count.
    public func allDeliveryTotals() -> [String: DeliveryStatistics] {
        routing.withLock { $0.counters }.mapValues(\.totals)
    }

    /// Starts the statistics of `subscriber` at zero if its name was never seen: a module's counts run from
    /// its first connection (PROTOCOL.md §5), whether or not it subscribes.
    public func noteSubscriber(_ subscriber: String) {
        routing.withLock { routing in _ = routing.noteName(subscriber) }
    }

    /// Sets the statistics of `subscriber` back to zero and returns them as they are then (what was counted
    /// since, if anything); `nil` if the name is not known.
    @discardableResult
    public func resetDeliveryStatistics(for subscriber: String) -> DeliveryStatistics? {
        guard let counters = routing.withLock({ $0.counters[subscriber] }) else { return nil }
        counters.reset()
        return counters.snapshot
    }
}

extension EventBus {
    /// Everything the bus's lock guards.
    struct Routing: ~Copyable {
        var trie = TopicTrie<SubscriptionStorage>()
        var subscriptions: [UInt64: SubscriptionStorage] = [:]
        /// Matching subscriptions per topic, in subscription order; dropped whenever subscriptions change.
        var routes: [String: [SubscriptionStorage]] = [:]
        /// The subscriptions `routes` names, in all.
        var routeEntries = 0
        /// Counters per subscriber name; kept after the name's last subscription goes (PROTOCOL.md §5), up to
        /// `statisticsLimit` names.
        var counters: [String: DeliveryCounters] = [:]
        /// When each name of `counters` was last noted (a `hello` or a subscription), in `noted` order.
        var lastNoted: [String: UInt64] = [:]
        var noted: UInt64 = 0
        let statisticsLimit: Int
        var nextID: UInt64 = 1

        init(statisticsLimit: Int) {
            self.statisticsLimit = max(1, statisticsLimit)
        }

        /// The counters of `name`, made at zero if it has none; it is now the most recently noted. Past
        /// `statisticsLimit` names, those with no subscription left are forgotten, the longest unnoted first,
        /// down to three quarters of the limit (so that the sort this takes runs once per quarter of it).
        /// Names with a live subscription are kept whatever their number: their counters are in use.
        mutating func noteName(_ name: String) -> DeliveryCounters {
            let counters = self.counters[name] ?? DeliveryCounters()
            self.counters[name] = counters
            noted += 1
            lastNoted[name] = noted
            if self.counters.count > statisticsLimit {
                let live = Set(subscriptions.values.map(\.subscriber))
                let idle = lastNoted.filter { $0.key != name && !live.contains($0.key) }.sorted { $0.value < $1.value }
                for (forgotten, _) in idle.prefix(max(0, self.counters.count - statisticsLimit * 3 / 4)) {
                    self.counters.removeValue(forKey: forgotten)
                    lastNoted.removeValue(forKey: forgotten)
                }
            }
            return counters
        }

        /// The route of the most recent topic: a stream of one event type skips hashing its topic.
        var lastTopic = ""
        var lastRoute: [SubscriptionStorage] = []

        mutating func route(_ topic: String) -> [SubscriptionStorage] {
            if topic == lastTopic { return lastRoute }
            let route: [SubscriptionStorage]
            if let cached = routes[topic] {
                route = cached
            } else {
                route = trie.match(topic).sorted { $0.id < $1.id }
                if routes.count >= EventBus.routeCacheLimit
                    || routeEntries + route.count > EventBus.routeCacheEntryLimit
                {
                    routes.removeAll(keepingCapacity: true)
                    routeEntries = 0
                }
                routes[topic] = route
                routeEntries += route.count
            }
            lastTopic = topic
            lastRoute = route
            return route
        }

        mutating func forgetRoutes() {
            routes.removeAll(keepingCapacity: true)
            routeEntries = 0
            lastTopic = ""
            lastRoute = []
        }

        mutating func add(
            subscriber: String,
            patterns: [TopicPattern],
            buffer: Int,
            overflow: OverflowPolicy,
            limit: Int?,
            filter: (@Sendable (EventEnvelope) -> Bool)?
        ) -> SubscriptionStorage {
            let counters = noteName(subscriber)
            let storage = SubscriptionStorage(
                id: nextID,
                subscriber: subscriber,
                patterns: patterns,
                buffer: buffer,
                overflow: overflow,
                limit: limit,
                filter: filter,
                counters: counters
            )
            nextID += 1
            subscriptions[storage.id] = storage
            for pattern in patterns { trie.insert(pattern, storage) }
            forgetRoutes()
            return storage
        }

        /// Returns `false` if `storage` was already removed.
        mutating func remove(_ storage: SubscriptionStorage) -> Bool {
            guard subscriptions.removeValue(forKey: storage.id) != nil else { return false }
            for pattern in storage.patterns { trie.remove(pattern, storage) }
            forgetRoutes()
            return true
        }
    }
}
