import DequeModule
import HeraldCore
import HeraldLog
import HeraldProtocol
import NIOCore

/// One IPC connection, served entirely on its channel's event loop: requests are handled as they are read
/// (every frame of one read, then one write of all their replies), each live subscription is drained by a
/// ``DeliveryPump`` on the same loop, and heartbeats are a scheduled task. Nothing of a connection's hot
/// path crosses threads, except the wake-up a publisher on another loop gives a subscriber's pump.
final class IPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = [InboundFrame]
    typealias OutboundOut = ByteBuffer

    private let broker: Broker
    private let connections: OpenConnections
    private var session: IPCSession
    private var pumps: [DeliveryPump] = []
    private var groupPumps: [GroupDeliveryPump] = []
    /// Pumps that stopped because the connection was not writable.
    private var waitingForWritable: [any ConnectionPump] = []
    private var heartbeat: RepeatedTask?
    private var lastHeard = NIODeadline.now()
    /// The silence at the first ping of the current silent spell.
    private var firstPing: TimeAmount?
    private var closing = false
    /// This connection's health from its heartbeats, reported to the module's (``Broker/connection(_:of:is:)``).
    private var health = ModuleHealth.healthy

    private let kind: BrokerMetrics.ConnectionKind

    init(broker: Broker, requiresToken: Bool, connections: OpenConnections) {
        self.kind = requiresToken ? .tcp : .ipc
        self.broker = broker
        self.connections = connections
        self.session = IPCSession(broker: broker, requiresToken: requiresToken)
    }

    func channelActive(context: ChannelHandlerContext) {
        broker.metrics.connection(kind, 1)
        connections.add(context.channel)
        let channel = context.channel
        let outbox = Outbox(channel: channel)
        session.sendLater = { bytes in outbox.send(bytes) }
        let interval = TimeAmount.milliseconds(Int64(broker.configuration.ipc.heartbeatMs))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            handler.value.beat(context: bound.value, interval: interval)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        broker.metrics.connection(kind, -1)
        heartbeat?.cancel()
        heartbeat = nil
        // What the subscriptions still queue counts as failed; `module.unloaded` when this was the last
        // connection of a loaded module (PROTOCOL.md §3, §4.1).
        if health != .healthy, let module = session.moduleName {
            broker.modules.forget(ObjectIdentifier(self), module: module)
        }
        session.end()
        for pump in pumps { pump.abandon() }
        pumps.removeAll()
        for pump in groupPumps { pump.stop() }
        groupPumps.removeAll()
        waitingForWritable.removeAll()
        connections.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        lastHeard = .now()
        if health != .healthy { report(.healthy) }
        let keepOpen = session.handle(unwrapInboundIn(data))
        if !session.replies.bytes.isEmpty {
            context.write(wrapOutboundOut(ByteBuffer(bytes: session.replies.bytes)), promise: nil)
            session.replies.clear()
        }
        context.flush()
        // Started after the replies are written: no event of a subscription precedes its `ok`.
        for subscription in session.pendingDeliveries {
            let pump = DeliveryPump(subscription: subscription, handler: self, context: context)
            pumps.append(pump)
            pump.run(context: context)
        }
        session.pendingDeliveries.removeAll()
        for membership in session.pendingGroupDeliveries {
            let pump = GroupDeliveryPump(membership: membership, handler: self, context: context)
            groupPumps.append(pump)
            pump.run(context: context)
        }
        session.pendingGroupDeliveries.removeAll()
        for ended in session.endedGroupDeliveries {
            groupPumps.removeAll { pump in
                guard pump.subscription == ended else { return false }
                pump.stop()
                return true
            }
        }
        session.endedGroupDeliveries.removeAll()
        // After an unsubscribe's `ok` no event of it follows: what its pump holds counts as failed.
        for ended in session.endedDeliveries {
            pumps.removeAll { pump in
                guard pump.subscription === ended else { return false }
                pump.abandon()
                return true
            }
        }
        session.endedDeliveries.removeAll()
        if !keepOpen {
            closing = true
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            let waiting = waitingForWritable
            waitingForWritable.removeAll()
            for pump in waiting { pump.run(context: context) }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        broker.logger.debug("ipc connection error", metadata: ["ipc.error": "\(error)"])
        context.close(promise: nil)
    }

    /// A pump found the connection full; it runs again when the connection is writable.
    func waitForWritable(_ pump: any ConnectionPump) {
        waitingForWritable.append(pump)
    }

    /// A durable subscription's events could not be read from the log: the client is told and the
    /// connection closed, so that what its members hold goes to other members.
    func failDelivery(context: ChannelHandlerContext, group: String, error: LogError) {
        broker.logger.error(
            "group delivery failed: the log could not be read", metadata: ["group": "\(group)", "error": "\(error)"])
        var frame = FrameWriter()
        frame.error(
            ProtocolError(.storageFailed, "group \(group): the log could not be read: \(error)", requestID: nil))
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: frame.bytes)), promise: nil)
        closing = true
        context.close(promise: nil)
    }

    /// Heartbeats (PROTOCOL.md §2.3): pings a connection that has sent nothing for a heartbeat, and closes
    /// one that has been silent for three. A connection is never closed before it was pinged and had two
    /// heartbeats to answer, even when the timer fires late on a loaded machine.
    ///
    /// A module's connection that left a ping unanswered for a heartbeat is `degraded`; one closed for its
    /// silence was `unhealthy` (``Broker/connection(_:of:is:)`` publishes `module.health_changed`).
    private func beat(context: ChannelHandlerContext, interval: TimeAmount) {
        let silence = NIODeadline.now() - lastHeard
        guard silence >= interval else {
            firstPing = nil
            report(.healthy)
            return
        }
        if let firstPing, silence >= interval * 3, silence - firstPing >= interval * 2 {
            report(.unhealthy)
            context.close(promise: nil)
            return
        }
        if let firstPing, silence - firstPing >= interval { report(.degraded) }
        if firstPing == nil { firstPing = silence }
        var ping = FrameWriter()
        ping.ping()
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: ping.bytes)), promise: nil)
    }
}

extension IPCConnectionHandler {
    /// Records this connection's health and tells the broker when it changed.
    private func report(_ health: ModuleHealth) {
        guard health != self.health else { return }
        self.health = health
        guard let module = session.moduleName else { return }
        broker.connection(ObjectIdentifier(self), of: module, is: health)
    }
}

/// Drains one live subscription into its connection on the connection's event loop: a batch is taken from
/// the subscription and written in chunks of about 64 KiB while the connection is writable, at most
/// ``turnBudget`` bytes per turn of the loop so that one busy subscription never starves the loop's other
/// connections (their reads, replies and heartbeats). An event counts as `successful` once its chunk is
/// written to the socket, as `failed` if the write fails or the connection closes before it is written.
final class DeliveryPump: ConnectionPump {
    /// The size at which a chunk of `event` frames is handed to the channel.
    static let chunk = 64 << 10
    /// Bytes written per turn of the event loop before the pump lets other work run.
    static let turnBudget = 4 * chunk

    let subscription: Subscription
    private unowned let handler: IPCConnectionHandler
    /// Taken from the subscription and not written yet.
    private var batch = Deque<SubscriptionDelivery>()
    private var frames = FrameWriter()
    private var isScheduled = false
    private var isAbandoned = false
    /// Wakes the pump on its event loop; called by a publisher when events arrive. It holds the pump weakly:
    /// the subscription keeps it until it is called or the subscription ends.
    private var wake: (@Sendable () -> Void)!

    init(subscription: Subscription, handler: IPCConnectionHandler, context: ChannelHandlerContext) {
        self.subscription = subscription
        self.handler = handler
        wake = wakeUp(context: context)
    }

    /// Writes what is queued while the connection takes it and the turn's budget lasts; parks (until woken)
    /// when nothing is queued, waits for writability when the connection is full, and yields the loop
    /// (running again on its next turn) when the budget is spent.
    func run(context: ChannelHandlerContext) {
        isScheduled = false
        guard !isAbandoned, context.channel.isActive else { return }
        var budget = Self.turnBudget
        while true {
            if batch.isEmpty {
                switch subscription.takeBatch(into: &batch, whenReady: wake) {
                case .waiting, .ended: return
                case .taken: break
                }
            }
            guard context.channel.isWritable else {
                handler.waitForWritable(self)
                return
            }
            guard budget > 0 else {
                scheduleNextTurn(context: context)
                return
            }
            budget -= writeChunk(context: context)
        }
    }

    /// Counts what was taken and never written as `failed`: the connection closed.
    func abandon() {
        isAbandoned = true
        subscription.recordFailed(batch.count)
        batch.removeAll()
    }

    private func scheduleNextTurn(context: ChannelHandlerContext) {
        guard !isScheduled else { return }
        isScheduled = true
        runOnNextTurn(context: context)
    }

    /// Frames events from the front of the batch until a chunk is full, writes and flushes it; returns its
    /// size in bytes.
    private func writeChunk(context: ChannelHandlerContext) -> Int {
        var count = 0
        while let delivery = batch.popFirst() {
            frames.event(subscription: subscription.id, seq: delivery.seq, envelope: delivery.envelope)
            count += 1
            if frames.bytes.count >= Self.chunk { break }
        }
        let size = frames.bytes.count
        let written = count
        let promise = context.eventLoop.makePromise(of: Void.self)
        let subscription = self.subscription
        promise.futureResult.whenComplete { result in
            switch result {
            case .success: subscription.recordDelivered(written)
            case .failure: subscription.recordFailed(written)
            }
        }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: frames.bytes)), promise: promise)
        frames.clear()
        return size
    }
}
