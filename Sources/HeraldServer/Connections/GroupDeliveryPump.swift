import HeraldLog
import HeraldProtocol
import Metrics
import NIOCore

/// Drains one durable subscription into its connection on the connection's event loop: takes what its
/// group has ready for the member (PROTOCOL.md §4.2) and writes it as `event` frames with `attempt`, while
/// the connection is writable and the turn's budget lasts, like ``DeliveryPump``. Nothing is dropped: what
/// the member cannot take yet stays in the log, and what it took and never acknowledged goes back to the
/// group when it leaves.
final class GroupDeliveryPump: ConnectionPump {
    let membership: GroupMembership
    /// Strong: a write that fails can close the channel (and end the connection) in the middle of a run.
    /// The cycle with the connection's list of pumps ends with ``BrokerConnection/end()``.
    private let connection: BrokerConnection
    private var frames: FrameWriter
    private var isScheduled = false
    private var isStopped = false
    private let latency: Timer

    init(membership: GroupMembership, connection: BrokerConnection) {
        self.membership = membership
        self.connection = connection
        self.frames = FrameWriter(framing: connection.framing)
        latency = connection.broker.metrics.groupDeliveryLatency(group: membership.group.name)
        membership.member.onWake(wakeUp(context: connection.output, wakeups: connection.wakeups))
    }

    var subscription: UInt64 { membership.member.subscription }

    func run(context: ChannelHandlerContext) {
        isScheduled = false
        guard !isStopped, context.channel.isActive else { return }
        var budget = DeliveryPump.turnBudget
        while true {
            // A write below may have closed the channel, and the connection stopped this pump.
            guard !isStopped, context.channel.isActive else { return }
            guard context.channel.isWritable else {
                connection.waitForWritable(self)
                return
            }
            guard budget > 0 else {
                scheduleNextTurn(context: context)
                return
            }
            let deliveries: [GroupDelivery]
            do throws(LogError) {
                deliveries = try membership.group.take(
                    membership.member, maximum: 1024, maximumBytes: DeliveryPump.chunk)
            } catch {
                connection.failDelivery(group: membership.group.name, error: error)
                return
            }
            guard !deliveries.isEmpty else { return }
            var oldestFirst: Int64?
            for delivery in deliveries {
                frames.event(
                    subscription: subscription, seq: delivery.seq, attempt: delivery.attempt, json: delivery.bytes)
                if delivery.attempt == 1 { oldestFirst = min(oldestFirst ?? delivery.timestamp, delivery.timestamp) }
            }
            budget -= frames.bytes.count
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: frames.bytes)), promise: nil)
            frames.clear()
            if let oldestFirst {
                latency.recordMilliseconds(max(0, Broker.millisecondsSince1970() - oldestFirst))
            }
        }
    }

    /// The subscription ended: no more deliveries.
    func stop() {
        isStopped = true
        membership.member.onWake {}
    }

    private func scheduleNextTurn(context: ChannelHandlerContext) {
        guard !isScheduled else { return }
        isScheduled = true
        runOnNextTurn(context: context)
    }
}
