import HeraldCore
import HeraldProtocol
import NIOCore

/// One IPC connection, served entirely on its channel's event loop: requests are handled as they are read
/// (every frame of one read, then one write of all their replies, by its ``BrokerConnection``), each
/// subscription is drained by a pump on the same loop, and heartbeats are a scheduled task. Nothing of a connection's hot
/// path crosses threads, except the wake-up a publisher on another loop gives a subscriber's pump.
final class IPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = [InboundFrame]
    typealias OutboundOut = ByteBuffer

    private let broker: Broker
    private let connections: OpenConnections
    private let requiresToken: Bool
    /// The session and its pumps, from the moment the channel is active.
    private var connection: BrokerConnection?
    /// The next heartbeat check.
    private var heartbeat: Scheduled<Void>?
    private var liveness: Heartbeat
    /// This connection's health from its heartbeats, reported to the module's (``Broker/connection(_:of:is:)``).
    private var health = ModuleHealth.healthy

    private let kind: BrokerMetrics.ConnectionKind

    init(broker: Broker, requiresToken: Bool, connections: OpenConnections) {
        self.kind = requiresToken ? .tcp : .ipc
        self.broker = broker
        self.connections = connections
        self.requiresToken = requiresToken
        liveness = Heartbeat(
            interval: .milliseconds(Int64(broker.configuration.ipc.heartbeatMs)), now: .now())
    }

    func channelActive(context: ChannelHandlerContext) {
        broker.metrics.connection(kind, 1)
        connections.add(context.channel)
        connection = BrokerConnection(
            session: IPCSession(
                broker: broker, requiresToken: requiresToken,
                peerProcess: requiresToken ? nil : ConnectionOrigin.peerProcess(of: context.channel)),
            broker: broker, output: context)
        liveness.heard(at: .now())
        scheduleBeat(at: .now() + liveness.interval, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        broker.metrics.connection(kind, -1)
        heartbeat?.cancel()
        heartbeat = nil
        // What the subscriptions still queue counts as failed; `module.unloaded` when this was the last
        // connection of a loaded module (PROTOCOL.md §3, §4.1).
        if let connection {
            if health != .healthy, let module = connection.moduleName {
                broker.modules.forget(ObjectIdentifier(self), module: module)
            }
            connection.end()
        }
        connection = nil
        connections.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, !connection.isClosing else { return }
        liveness.heard(at: .now())
        if health != .healthy { report(.healthy) }
        connection.handle(unwrapInboundIn(data))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        broker.logger.debug("ipc connection error", metadata: ["ipc.error": "\(error)"])
        context.close(promise: nil)
    }

    /// Heartbeats (PROTOCOL.md §2.3, ``Heartbeat``): pings a connection that has sent nothing for a
    /// heartbeat, and closes one that has been silent for three, two of them after its first ping.
    ///
    /// A module's connection that left a ping unanswered for a heartbeat is `degraded`; one closed for its
    /// silence was `unhealthy` (``Broker/connection(_:of:is:)`` publishes `module.health_changed`).
    private func beat(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        // Not reading is the broker's doing while paused for the log, and a client taking the replies it had
        // left unread is alive: either way its pongs wait unread.
        if let connection, connection.isReadingPaused || connection.repliesAreDraining() { liveness.heard(at: now) }
        let (verdict, next) = liveness.check(at: now)
        switch verdict {
        case .alive:
            report(.healthy)
        case .ping(let unanswered):
            if unanswered { report(.degraded) }
            var ping = FrameWriter()
            ping.ping()
            connection?.write(ping.bytes)
        case .dead:
            // A check that runs late can see both thresholds at once: the ping did go unanswered for a
            // heartbeat first, so the module is reported degraded on its way to unhealthy.
            if health == .healthy { report(.degraded) }
            report(.unhealthy)
            connection?.closingForSilence()
            context.close(promise: nil)
            return
        }
        scheduleBeat(at: next, context: context)
    }

    private func scheduleBeat(at deadline: NIODeadline, context: ChannelHandlerContext) {
        // Not after the connection ended (a ping whose write found the socket closed ends it on the way).
        guard connection != nil, context.channel.isActive else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        heartbeat = context.eventLoop.scheduleTask(deadline: deadline) {
            handler.value.beat(context: bound.value)
        }
    }
}

extension IPCConnectionHandler {
    /// Records this connection's health and tells the broker when it changed.
    private func report(_ health: ModuleHealth) {
        guard health != self.health else { return }
        self.health = health
        guard let module = connection?.moduleName else { return }
        broker.connection(ObjectIdentifier(self), of: module, is: health)
    }
}
