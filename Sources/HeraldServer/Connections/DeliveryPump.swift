import DequeModule
import HeraldCore
import HeraldProtocol
import NIOCore

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
    /// Strong: a write that fails can close the channel (and end the connection) in the middle of a run.
    /// The cycle with the connection's list of pumps ends with ``BrokerConnection/end()``.
    private let connection: BrokerConnection
    /// Taken from the subscription and not written yet.
    private var batch = Deque<SubscriptionDelivery>()
    private var frames: FrameWriter
    private var isScheduled = false
    private var isAbandoned = false
    /// Wakes the pump on its event loop; called by a publisher when events arrive. It holds the pump weakly:
    /// the subscription keeps it until it is called or the subscription ends.
    private var wake: (@Sendable () -> Void)!

    init(subscription: Subscription, connection: BrokerConnection) {
        self.subscription = subscription
        self.connection = connection
        self.frames = FrameWriter(framing: connection.framing)
        wake = wakeUp(context: connection.output, wakeups: connection.wakeups)
    }

    /// Writes what is queued while the connection takes it and the turn's budget lasts; parks (until woken)
    /// when nothing is queued, waits for writability when the connection is full, and yields the loop
    /// (running again on its next turn) when the budget is spent.
    func run(context: ChannelHandlerContext) {
        isScheduled = false
        guard !isAbandoned, context.channel.isActive else { return }
        var budget = Self.turnBudget
        while true {
            // A write below may have closed the channel, and the connection ended this pump.
            guard !isAbandoned, context.channel.isActive else { return }
            if batch.isEmpty {
                switch subscription.takeBatch(into: &batch, whenReady: wake) {
                case .waiting, .ended: return
                case .taken: break
                }
            }
            guard context.channel.isWritable else {
                connection.waitForWritable(self)
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
        let oldest = batch.first?.envelope.sealedAt
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
        let latency = connection.broker.metrics.deliveryLatency
        promise.futureResult.whenComplete { result in
            switch result {
            case .success:
                subscription.recordDelivered(written)
                if let oldest {
                    let elapsed = (ContinuousClock.now - oldest).components
                    latency.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
                }
            case .failure: subscription.recordFailed(written)
            }
        }
        context.writeAndFlush(NIOAny(ByteBuffer(bytes: frames.bytes)), promise: promise)
        frames.clear()
        return size
    }
}
