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
    private var heartbeat: RepeatedTask?
    private var lastHeard = NIODeadline.now()
    /// The silence at the first ping of the current silent spell.
    private var firstPing: TimeAmount?
    /// This connection's health from its heartbeats, reported to the module's (``Broker/connection(_:of:is:)``).
    private var health = ModuleHealth.healthy

    private let kind: BrokerMetrics.ConnectionKind

    init(broker: Broker, requiresToken: Bool, connections: OpenConnections) {
        self.kind = requiresToken ? .tcp : .ipc
        self.broker = broker
        self.connections = connections
        self.requiresToken = requiresToken
    }

    func channelActive(context: ChannelHandlerContext) {
        broker.metrics.connection(kind, 1)
        connections.add(context.channel)
        connection = BrokerConnection(
            session: IPCSession(
                broker: broker, requiresToken: requiresToken,
                peerProcess: requiresToken ? nil : ConnectionOrigin.peerProcess(of: context.channel)),
            broker: broker, output: context)
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
        lastHeard = .now()
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

    /// Heartbeats (PROTOCOL.md §2.3): pings a connection that has sent nothing for a heartbeat, and closes
    /// one that has been silent for three. A connection is never closed before it was pinged and had two
    /// heartbeats to answer, even when the timer fires late on a loaded machine.
    ///
    /// A module's connection that left a ping unanswered for a heartbeat is `degraded`; one closed for its
    /// silence was `unhealthy` (``Broker/connection(_:of:is:)`` publishes `module.health_changed`).
    private func beat(context: ChannelHandlerContext, interval: TimeAmount) {
        // Not reading is the broker's doing while paused: the client's pongs wait unread.
        if connection?.isReadingPaused == true { lastHeard = .now() }
        let silence = NIODeadline.now() - lastHeard
        guard silence >= interval else {
            firstPing = nil
            report(.healthy)
            return
        }
        if let firstPing, silence >= interval * 3, silence - firstPing >= interval * 2 {
            // A timer firing late can see both thresholds at once: the ping did go unanswered for a
            // heartbeat first, so the module is reported degraded on its way to unhealthy.
            if health == .healthy { report(.degraded) }
            report(.unhealthy)
            connection?.closingForSilence()
            context.close(promise: nil)
            return
        }
        if let firstPing, silence - firstPing >= interval { report(.degraded) }
        if firstPing == nil { firstPing = silence }
        var ping = FrameWriter()
        ping.ping()
        connection?.write(ping.bytes)
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
