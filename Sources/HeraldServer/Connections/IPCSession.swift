import HeraldCore
import HeraldLog
import HeraldProtocol
import Logging

/// The state of one connection's conversation: handshake, module name, subscriptions.
struct IPCSession {
    private let broker: Broker
    private let requiresToken: Bool
    /// The module's name and version, once it said hello.
    private var module: String?
    private var version = ""
    /// Whether the client said `bye` (the reason its module is unloaded, if it was the last connection).
    private var saidBye = false
    /// The broker closed the connection for heartbeats of silence (PROTOCOL.md §2.3).
    var closedForSilence = false
    /// The permissions of the token presented in `hello`; `nil` when no token is configured (everything is
    /// allowed: the socket's mode 0600 is the guard, PROTOCOL.md §6).
    private var permissions: HeraldConfiguration.Token?
    /// Where the connection comes from: whether it is a process the broker started (``ModuleSupervisor``).
    private var origin: ConnectionOrigin
    /// `ipc.publish_rate`, when set.
    private var publishAllowance: TokenBucket?
    private var subscriptions: [UInt64: Subscription] = [:]
    /// Durable subscriptions: memberships of consumer groups, by subscription id.
    private var memberships: [UInt64: GroupMembership] = [:]
    /// Replies to the requests handled so far, not yet written.
    var replies = FrameWriter()
    /// Subscriptions whose delivery starts once the `ok` that announces them is written, so that no event
    /// of a subscription reaches the client before its `ok`. `held`: the `ok` waits behind a reply still to
    /// come (``order``), and so do the deliveries; otherwise it goes out with this read's replies, and the
    /// deliveries start right after them — not behind a confirmed publish later in the same read.
    var pendingDeliveries: [(subscription: Subscription, held: Bool)] = []
    /// Subscriptions unsubscribed by the frames just handled, whose deliveries must stop.
    var endedDeliveries: [Subscription] = []
    /// Durable subscriptions whose delivery starts once their `ok` is written (`held` as for
    /// ``pendingDeliveries``).
    var pendingGroupDeliveries: [(membership: GroupMembership, held: Bool)] = []
    /// Durable subscriptions unsubscribed by the frames just handled.
    var endedGroupDeliveries: [UInt64] = []
    /// Writes a reply that comes after the read that asked for it (a confirmed publish's `ok`, once the
    /// event is durable) into the slot its request reserved in ``order``; safe from any thread.
    var sendLater: @Sendable ([UInt8], UInt64) -> Void = { _, _ in }
    /// The connection's replies in request order (PROTOCOL.md §2.1): replies that come after a reply still
    /// to come wait behind it.
    var order = ReplyOrder()

    /// Whether the client is a module (PROTOCOL.md §3): it is loaded on its first `subscribe` or `ready`
    /// and unloaded when its last connection goes. WebSocket clients are not.
    let isModule: Bool

    /// A session on the IPC socket; the client's first frame must be `hello`. `peerProcess`: the process at
    /// the other end of a Unix socket connection.
    init(broker: Broker, requiresToken: Bool, peerProcess: Int32? = nil) {
        self.broker = broker
        self.requiresToken = requiresToken
        self.origin = ConnectionOrigin(peerProcess: peerProcess)
        self.isModule = true
        let rate = broker.configuration.ipc.publishRate
        if rate > 0 { publishAllowance = TokenBucket(rate: rate, now: Self.monotonicNow()) }
    }

    /// A session that needs no `hello`: the WebSocket gateway authenticated the client at the upgrade
    /// (PROTOCOL.md §7). Its statistics are kept under `principal`'s name; it is never a loaded module. Its
    /// frames are WebSocket text frames.
    init(broker: Broker, greeted principal: Principal) {
        self.broker = broker
        self.requiresToken = false
        self.origin = ConnectionOrigin()
        self.isModule = false
        self.module = principal.name
        self.permissions = principal.permissions
        self.replies = FrameWriter(framing: .webSocket)
        let rate = broker.configuration.ipc.publishRate
        if rate > 0 { publishAllowance = TokenBucket(rate: rate, now: Self.monotonicNow()) }
    }

    /// The client as the broker's checks see it.
    private var principal: Principal { Principal(name: module ?? "", permissions: permissions) }

    private static let origin = ContinuousClock.now

    private static func monotonicNow() -> Duration {
        ContinuousClock.now - origin
    }

    /// Handles the frames one read brought, in order, queueing their replies in ``replies`` and new
    /// subscriptions in ``pendingDeliveries``; returns `false` when the connection must close (after writing
    /// the replies; later frames are not handled).
    mutating func handle(_ frames: [InboundFrame]) -> Bool {
        for unit in frames {
            let mark = replies.bytes.count
            defer {
                // Behind a reply still to come, this frame's replies wait their turn.
                if order.isHolding && replies.bytes.count > mark { order.hold(replies.take(after: mark)) }
            }
            let keepOpen: Bool
            switch unit {
            case .oversized(let length):
                replies.error(FrameLength.validate(length, maximum: broker.configuration.ipc.maxFrame)!)
                keepOpen = false
            case .frame(let frame):
                let parsed = frame.withUnsafeReadableBytes { bytes in
                    ClientRequest.parse(bytes.assumingMemoryBound(to: UInt8.self))
                }
                switch parsed {
                case .success(let request):
                    keepOpen = respond(to: request)
                case .failure(let error) where module == nil:
                    // Before `hello`, a frame that is not one (an unknown op, no op, not JSON) is
                    // `handshake_required` (§2.4); a `hello` with a bad field gets its own error.
                    let op = frame.withUnsafeReadableBytes {
                        ClientRequest.operationName(of: $0.assumingMemoryBound(to: UInt8.self))
                    }
                    keepOpen =
                        op == "hello"
                        ? fail(error)
                        : fail(
                            ProtocolError(
                                .handshakeRequired, "the first frame must be hello (\(error.message))",
                                requestID: error.requestID))
                case .failure(let error):
                    keepOpen = fail(error)
                }
            }
            if !keepOpen { return false }
        }
        return true
    }

    /// Ends every subscription (what they still queue counts as `failed`, PROTOCOL.md §4.1) and, when this
    /// was the last connection of a loaded module, publishes `module.unloaded` (§3).
    mutating func end() {
        for subscription in subscriptions.values { subscription.cancel() }
        subscriptions.removeAll()
        // What the members hold unacknowledged goes to the groups' other members (PROTOCOL.md §4.2).
        for membership in memberships.values { membership.group.leave(membership.member) }
        memberships.removeAll()
        guard isModule, let module else { return }
        broker.moduleDisconnected(module, saidBye: saidBye, unresponsive: closedForSilence)
    }

    /// The module's name once it said hello, when the connection is a module's.
    var moduleName: String? { isModule ? module : nil }

    /// The name the client goes by: its module's, or a WebSocket's `ws:<token name>`.
    var clientName: String? { module }

    /// Whether durable subscription `subscription` is still open (not unsubscribed since it was made).
    func isMember(_ subscription: UInt64) -> Bool { memberships[subscription] != nil }

    // MARK: Requests

    private mutating func respond(to request: ClientRequest) -> Bool {
        let id = request.id
        guard let module else {
            guard case .hello(let hello) = request.operation else {
                return fail(ProtocolError(.handshakeRequired, "the first frame must be hello", requestID: id))
            }
            return greet(hello, id: id)
        }
        switch request.operation {
        case .hello:
            return fail(ProtocolError(.invalidRequest, "hello: this connection already said hello", requestID: id))
        case .subscribe(let subscribe):
            return self.subscribe(subscribe, module: module, id: id)
        case .unsubscribe(let subscription):
            if let membership = memberships.removeValue(forKey: subscription) {
                membership.group.leave(membership.member)
                endedGroupDeliveries.append(subscription)
                replies.ok(id: id)
                return true
            }
            guard let removed = subscriptions.removeValue(forKey: subscription) else {
                return fail(
                    ProtocolError(.unknownSubscription, "subscription: \(subscription) is not open", requestID: id)
                )
            }
            removed.cancel()
            endedDeliveries.append(removed)
            replies.ok(id: id)
        case .publish(let fields):
            return publish(fields, id: id)
        case .ready:
            // Loading a module as the broker shuts down would announce it to subscribers about to be told
            // it was stopped: like a new subscription, refused (the connection stays).
            if broker.isShuttingDown {
                return fail(ProtocolError(.shuttingDown, "the broker is shutting down", requestID: id))
            }
            replies.ok(id: id)
            broker.loadingModules {
                publishOwedUnload(module)
                load(module, replayingTo: nil)
            }
        case .ack(let subscription, let seqs):
            switch durableSubscription(subscription, id: id) {
            case .failure(let error): return fail(error)
            case .success(let membership):
                let answer = membership.group.ack(membership.member, seqs: seqs)
                return acknowledged(answer, subscription: subscription, id: id)
            }
        case .nack(let nack):
            switch durableSubscription(nack.subscription, id: id) {
            case .failure(let error): return fail(error)
            case .success(let membership):
                let answer = membership.group.nack(
                    membership.member, seq: nack.seq, delayMs: nack.delayMs, deadLetter: nack.deadLetter)
                return acknowledged(answer, subscription: nack.subscription, id: id)
            }
        case .stats(let name):
            if let name {
                guard let statistics = broker.bus.deliveryStatistics(for: name) else {
                    return fail(ProtocolError(.invalidRequest, "module: '\(name)' was never seen", requestID: id))
                }
                replies.ok(id: id, stats: [name: statistics])
            } else {
                let mark = replies.bytes.count
                replies.ok(id: id, stats: broker.bus.allDeliveryStatistics())
                return fits(since: mark, id: id, "stats: every module's statistics take")
            }
        case .subscribers(let eventType):
            let mark = replies.bytes.count
            replies.ok(id: id, subscribers: broker.subscribers(for: eventType))
            return fits(since: mark, id: id, "subscribers: the list takes")
        case .ping:
            replies.pong(id: id)
        case .pong:
            break
        case .bye:
            saidBye = true
            if id != nil { replies.ok(id: id) }
            return false
        }
        return true
    }

    private mutating func greet(_ hello: ClientRequest.Hello, id: RequestID?) -> Bool {
        let tokens = broker.configuration.tokens
        if requiresToken && tokens.isEmpty && hello.token.flatMap(broker.issuedToken) == nil {
            return fail(
                ProtocolError(
                    .unauthorized,
                    "token: this broker has no [[auth.tokens]], so its TCP listener accepts no one",
                    requestID: id
                )
            )
        }
        if let presented = hello.token, let issued = broker.issuedToken(presented) {
            // A token the broker gave a module it started: only that module presents it (PROTOCOL.md §6).
            guard issued.module == hello.moduleName else {
                return fail(
                    ProtocolError(
                        .unauthorized, "token: issued to module '\(issued.module)', not '\(hello.moduleName)'",
                        requestID: id))
            }
            permissions = issued.permissions
            origin.issuedToken = presented
        } else if requiresToken || !tokens.isEmpty {
            guard let presented = hello.token else {
                return fail(ProtocolError(.unauthorized, "token: required by this broker", requestID: id))
            }
            guard let token = tokens.first(where: { Self.sameSecret($0.secret, presented) }) else {
                return fail(ProtocolError(.unauthorized, "token: not valid", requestID: id))
            }
            permissions = token
        }
        module = hello.moduleName
        version = hello.moduleVersion
        broker.modules.connected(hello.moduleName, version: hello.moduleVersion)
        // Its statistics run from here (PROTOCOL.md §5): zeros until it subscribes, not "never seen".
        broker.bus.noteSubscriber(hello.moduleName)
        replies.welcome(
            id: id,
            session: broker.nextSession(),
            serverName: Broker.serverName,
            serverVersion: Broker.serverVersion,
            maxFrame: broker.configuration.ipc.maxFrame,
            heartbeatMs: broker.configuration.ipc.heartbeatMs
        )
        return true
    }

    private mutating func subscribe(_ request: ClientRequest.Subscribe, module: String, id: RequestID?) -> Bool {
        if broker.isShuttingDown {
            return fail(ProtocolError(.shuttingDown, "the broker is shutting down", requestID: id))
        }
        do throws(ProtocolError) {
            try broker.checkSubscribe(request.topics, from: principal)
        } catch {
            return fail(ProtocolError(error.code, error.message, requestID: id))
        }
        let open = subscriptions.count + memberships.count
        guard open < broker.configuration.ipc.maxSubscriptions else {
            return fail(
                ProtocolError(
                    .tooManySubscriptions,
                    "this connection has \(open) subscriptions, the most allowed",
                    requestID: id
                )
            )
        }
        if let group = request.group {
            guard isModule else {
                return fail(
                    ProtocolError(
                        .invalidRequest, "group: durable subscriptions are served on the IPC socket, not here",
                        requestID: id))
            }
            return join(group, request, module: module, id: id)
        }
        let subscription: Subscription
        do throws(SubscriptionError) {
            // Subscribed and loaded as one step: see `Broker.loadingModules`. Its replay follows the `ok`,
            // which goes out first (deliveries start after this read's replies).
            subscription = try broker.loadingModules { () throws(SubscriptionError) -> Subscription in
                // Before this subscription exists: an owed unload is not for it.
                publishOwedUnload(module)
                let subscription = try broker.bus.subscribe(
                    request.topics,
                    subscriber: module,
                    buffer: request.buffer ?? 100,
                    overflow: request.overflow ?? .dropNewest
                )
                load(module, replayingTo: subscription)
                return subscription
            }
        } catch {
            return fail(
                ProtocolError(error.isInvalidTopic ? .invalidTopic : .invalidRequest, error.message, requestID: id))
        }
        subscriptions[subscription.id] = subscription
        replies.ok(id: id, subscription: subscription.id)
        pendingDeliveries.append((subscription, order.isHolding))
        return true
    }

    /// A durable subscription (PROTOCOL.md §4.2): joins the group, making it — starting at `from` — when it
    /// is new; its events follow the `ok`.
    private mutating func join(_ name: String, _ request: ClientRequest.Subscribe, module: String, id: RequestID?)
        -> Bool
    {
        guard let groups = broker.groups else {
            return fail(
                ProtocolError(
                    .invalidRequest, "group: this broker keeps no durable log, so it has no consumer groups",
                    requestID: id))
        }
        if broker.configuration.log.persist.isEmpty {
            return fail(
                ProtocolError(
                    .invalidRequest,
                    "group: this broker stores no events (log.persist = []), so a group would get none",
                    requestID: id))
        }
        if name == HeraldConfiguration.RabbitMQBridge.groupName {
            return fail(
                ProtocolError(
                    .invalidRequest, "group: '\(name)' is reserved for the RabbitMQ bridge's position in the log",
                    requestID: id))
        }
        let start: GroupStart =
            switch request.from ?? .latest {
            case .latest: .latest
            case .earliest: .earliest
            case .offset(let offset): .offset(offset)
            case .time(let milliseconds): .time(milliseconds)
            }
        let (group, member): (ConsumerGroup, GroupMember)
        do throws(GroupError) {
            (group, member) = try groups.join(
                group: name, topics: request.topics, start: start, subscription: { broker.bus.reserveSubscriptionID() },
                maxInFlight: request.maxInFlight, ackWaitMs: request.ackWaitMs.map { Int64($0) }, module: module)
        } catch {
            switch error {
            case .topicsDiffer: return fail(ProtocolError(.invalidRequest, "topics: \(error)", requestID: id))
            case .deleting: return fail(ProtocolError(.invalidRequest, "group: \(error)", requestID: id))
            case .storage, .closed, .notFound, .inUse:
                return fail(ProtocolError(.storageFailed, "group: \(error)", requestID: id))
            }
        }
        let subscription = member.subscription
        let membership = GroupMembership(group: group, member: member)
        memberships[subscription] = membership
        replies.ok(id: id, subscription: subscription)
        pendingGroupDeliveries.append((membership, order.isHolding))
        // A durable subscription loads its module like a live one; it replays nothing: the group reads
        // `module.loaded` events from the log like any other.
        broker.loadingModules {
            publishOwedUnload(module)
            load(module, replayingTo: nil)
        }
        return true
    }

    /// The durable subscription an `ack` or `nack` names, or the error for one that is live or not open.
    private func durableSubscription(_ subscription: UInt64, id: RequestID?) -> Result<GroupMembership, ProtocolError> {
        if let membership = memberships[subscription] { return .success(membership) }
        if subscriptions[subscription] != nil {
            return .failure(
                ProtocolError(
                    .invalidRequest,
                    "subscription: \(subscription) is a live subscription; only durable (group) deliveries are acknowledged",
                    requestID: id))
        }
        return .failure(
            ProtocolError(.unknownSubscription, "subscription: \(subscription) is not open", requestID: id))
    }

    /// Answers an `ack` or `nack`: an error naming seqs never delivered (nothing was changed); otherwise,
    /// with an `id`, `ok` once the group's state file records it.
    private mutating func acknowledged(_ answer: ConsumerGroup.Answer, subscription: UInt64, id: RequestID?) -> Bool {
        guard answer.unknown.isEmpty else {
            let listed = answer.unknown.map(String.init).joined(separator: ", ")
            return fail(
                ProtocolError(
                    .invalidRequest, "seq: \(listed) never delivered on subscription \(subscription)", requestID: id))
        }
        guard let id, let membership = memberships[subscription] else { return true }
        let sendLater = self.sendLater
        let framing = replies.framing
        let slot = order.reserve()
        membership.group.whenCommitted(answer.version) { result in
            var reply = FrameWriter(framing: framing)
            switch result {
            case .success: reply.ok(id: id)
            case .failure(let error):
                reply.error(
                    ProtocolError(.storageFailed, "the group state could not be written: \(error)", requestID: id))
            }
            sendLater(reply.bytes, slot)
        }
        return true
    }

    /// The `module.unloaded` still owed to a module that is about to load again (its process reconnected
    /// within the grace after its last connection closed): published before anything of the new load.
    /// Nothing for a loaded module, or one owed nothing.
    private func publishOwedUnload(_ module: String) {
        guard isModule, !broker.modules.isLoaded(module) else { return }
        broker.supervisor?.reconnectedDuringGrace(module)
    }

    /// Loads the module on its first `subscribe` or `ready` (PROTOCOL.md §3), inside
    /// `Broker.loadingModules`: the new subscription, if it matches `module.loaded`, is offered the
    /// `module.loaded` of each other loaded module as it was published (same `event_id`, `timestamp` and
    /// offset), oldest load first; then `module.loaded` for this module is published to every matching
    /// subscription, this one included. The replay and the module's own event may take the subscription's
    /// queue past its `buffer`: a queue that cannot hold them would drop events before the module could read
    /// anything. A module that is already loaded replays and publishes nothing. The caller has published
    /// the unload the module may be owed (``publishOwedUnload(_:)``) first.
    private func load(_ module: String, replayingTo subscription: Subscription?) {
        guard isModule else { return }
        guard let others = broker.modules.load(module, version: version) else {
            // Already loaded by another connection of its name (§3): a process the supervisor started and
            // waits for is loaded all the same once it subscribes.
            broker.supervisor?.loaded(module, from: origin)
            return
        }
        if let subscription, subscription.patterns.contains(where: { $0.matches(ModuleLoaded.eventType) }) {
            subscription.allowBeyondBuffer(others.count + 1)
            for other in others {
                let envelope =
                    other.announcement
                    ?? (try? EventEnvelope(
                        ModuleLoaded(moduleName: other.name, version: other.version),
                        metadata: ["producer": Broker.serverName]))
                if let envelope { subscription.offer(envelope) }
            }
        }
        if let announcement = broker.publish(ModuleLoaded(moduleName: module, version: version)) {
            broker.modules.announced(module, announcement)
        }
        broker.supervisor?.loaded(module, from: origin)
    }

    private mutating func publish(_ fields: EnvelopeFields, id: RequestID?) -> Bool {
        if broker.isShuttingDown {
            return refuse(fields, id: id, .shuttingDown, "the broker is shutting down")
        }
        if publishAllowance?.take(now: Self.monotonicNow()) == false {
            return refuse(
                fields,
                id: id,
                .rateLimited,
                "this connection may publish \(broker.configuration.ipc.publishRate) events per second"
            )
        }
        let admitted: EnvelopeFields
        do throws(ProtocolError) {
            admitted = try broker.admit(fields, from: principal)
        } catch {
            return refuse(fields, id: id, error.code, error.message)
        }
        // A confirmed publish of a stored event is answered once the event is durable (PROTOCOL.md §4.4),
        // from the log's writer thread; everything else at once, with the other replies of this read.
        let sendLater = self.sendLater
        let framing = replies.framing
        var confirming: Broker.ReceiptCallback?
        // Reserved before the event is accepted: the log may confirm it before `accept` returns.
        let slot = id.map { _ in order.reserve() }
        if let id, let slot {
            confirming = { result in
                var reply = FrameWriter(framing: framing)
                Self.confirm(result, id: id, into: &reply)
                sendLater(reply.bytes, slot)
            }
        }
        let now: PublishReceipt?
        do throws(ProtocolError) {
            now = try broker.accept(admitted, confirming: confirming)
        } catch {
            if let slot { order.cancel(slot) }
            return refuse(fields, id: id, error.code, error.message)
        }
        if let id, let slot, let now {
            // Not stored (or refused): answered now after all, and `confirming` is never called.
            order.cancel(slot)
            Self.confirm(.success(now), id: id, into: &replies)
        }
        return true
    }

    /// The answer to a confirmed publish: `ok` with the event's id, whether it was a duplicate and, when
    /// stored, its offset and partition; or the error.
    private static func confirm(
        _ result: Result<PublishReceipt, ProtocolError>, id: RequestID, into writer: inout FrameWriter
    ) {
        switch result {
        case .success(let receipt):
            writer.ok(
                id: id, eventID: receipt.eventID, duplicate: receipt.duplicate, offset: receipt.position?.offset,
                partition: receipt.position?.partition)
        case .failure(let error):
            writer.error(ProtocolError(error.code, error.message, requestID: id))
        }
    }

    /// Compares secrets in time that depends on their lengths only, not on where they differ.
    static func sameSecret(_ expected: String, _ presented: String) -> Bool {
        let a = Array(expected.utf8)
        let b = Array(presented.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }

    /// Refuses a publish: the error carries the request's `id`, or, for a publish sent without one, the
    /// event's `event_id` when it had one (PROTOCOL.md §2.2).
    private mutating func refuse(_ fields: EnvelopeFields, id: RequestID?, _ code: ErrorCode, _ message: String) -> Bool
    {
        fail(ProtocolError(code, message, requestID: id, eventID: id == nil ? fields.eventID : nil))
    }

    /// Keeps the reply written since `mark` when it fits in `ipc.max_frame` (PROTOCOL.md §2.1: in both
    /// directions); otherwise replaces it with `invalid_request` saying so. Returns `true`: the connection stays.
    private mutating func fits(since mark: Int, id: RequestID?, _ what: String) -> Bool {
        let maximum = broker.configuration.ipc.maxFrame
        let size = replies.bytes.count - mark
        guard size > maximum else { return true }
        _ = replies.take(after: mark)
        return fail(
            ProtocolError(
                .invalidRequest,
                "\(what) \(size) bytes, more than ipc.max_frame = \(maximum): ask for one module, or use the HTTP API",
                requestID: id))
    }

    /// Queues the error frame; returns whether the connection stays open (PROTOCOL.md §2.4).
    private mutating func fail(_ error: ProtocolError) -> Bool {
        replies.error(error)
        return !error.code.closesConnection
    }
}

/// One durable subscription of a connection: its group and its membership.
struct GroupMembership {
    let group: ConsumerGroup
    let member: GroupMember
}
