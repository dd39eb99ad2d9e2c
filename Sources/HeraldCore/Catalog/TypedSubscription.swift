/// A subscription to one catalog event type, yielding decoded payloads.
///
/// An event of that type whose payload does not decode (published by someone not using the catalog, on a
/// broker without payload validation) is skipped; subscribe by pattern to see such events raw.
public struct TypedSubscription<Event: CatalogEvent>: AsyncSequence, Sendable {
    /// Each element is one event with its decoded payload.
    public typealias Element = TypedEvent<Event>
    /// A subscription ends; it never fails.
    public typealias Failure = Never

    /// The underlying subscription: cancel it to end this sequence.
    public let subscription: Subscription

    /// Makes the iterator; one at a time, as for ``Subscription``.
    public func makeAsyncIterator() -> Iterator {
        Iterator(base: subscription.makeAsyncIterator())
    }

    /// Decodes each event of the underlying subscription.
    public struct Iterator: AsyncIteratorProtocol {
        var base: Subscription.Iterator

        /// The next decodable event; `nil` once the subscription has ended.
        public mutating func next() async -> TypedEvent<Event>? {
            await next(isolation: nil)
        }

        /// The next decodable event; `nil` once the subscription has ended.
        public mutating func next(isolation actor: isolated (any Actor)?) async -> TypedEvent<Event>? {
            while let envelope = await base.next(isolation: actor) {
                if let event = try? TypedEvent<Event>(envelope) { return event }
            }
            return nil
        }
    }
}

@available(*, unavailable)
extension TypedSubscription.Iterator: Sendable {}

extension EventBus {
    /// Publishes a catalog event; its topic is its `eventType`, plus `.chainID` when given.
    @discardableResult
    public func publish<Event: CatalogEvent>(
        _ event: Event,
        chainID: Int64? = nil,
        eventID: String? = nil,
        key: String? = nil,
        metadata: EventEnvelope.Metadata = [:]
    ) throws(EnvelopeError) -> PublishResult {
        publish(try EventEnvelope(event, chainID: chainID, eventID: eventID, key: key, metadata: metadata))
    }

    /// The first event of one catalog event type whose payload decodes (on `chainID` only, when given); the
    /// subscription is registered when this returns.
    public func once<Event: CatalogEvent>(
        _ type: Event.Type,
        chainID: Int64? = nil,
        subscriber: String = EventBus.anonymousSubscriber
    ) throws(SubscriptionError) -> TypedSubscription<Event> {
        let subscription = try once(Self.patterns(for: Event.self, chainID: chainID), subscriber: subscriber) {
            (try? TypedEvent<Event>($0)) != nil
        }
        return TypedSubscription(subscription: subscription)
    }

    /// The patterns of one catalog event type: the bare type and the type on any chain, or on one chain.
    private static func patterns<Event: CatalogEvent>(for type: Event.Type, chainID: Int64?) -> [String] {
        if let chainID { return [Topic.of(eventType: Event.eventType, chainID: chainID)] }
        return [Event.eventType, Event.eventType + ".*"]
    }

    /// Subscribes to one catalog event type: on every chain (and without one) when `chainID` is `nil`,
    /// else on that chain only.
    public func subscribe<Event: CatalogEvent>(
        _ type: Event.Type,
        chainID: Int64? = nil,
        subscriber: String = EventBus.anonymousSubscriber,
        buffer: Int = 100,
        overflow: OverflowPolicy = .dropNewest
    ) throws(SubscriptionError) -> TypedSubscription<Event> {
        let subscription = try subscribe(
            Self.patterns(for: Event.self, chainID: chainID),
            subscriber: subscriber,
            buffer: buffer,
            overflow: overflow
        )
        return TypedSubscription(subscription: subscription)
    }
}
