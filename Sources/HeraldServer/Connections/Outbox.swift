import NIOCore
import Synchronization

/// Replies written from other threads (a confirmed publish's `ok` from the log's writer thread, an ack's
/// `ok` from the group committer): gathered under a lock and written by one task on the connection's event
/// loop, so that a group commit confirming hundreds of publishes costs one hop to the loop and one flush,
/// not one each.
final class Outbox: Sendable {
    /// The connection's output (``BrokerConnection/output``), used on its event loop only.
    private let output: NIOLoopBound<ChannelHandlerContext>
    private let pending = Mutex<(bytes: [UInt8], scheduled: Bool)>(([], false))

    init(context: ChannelHandlerContext) {
        self.output = NIOLoopBound(context, eventLoop: context.eventLoop)
    }

    /// Queues `bytes` (whole frames) for the connection.
    func send(_ bytes: [UInt8]) {
        let schedule = pending.withLock { pending in
            pending.bytes.append(contentsOf: bytes)
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        guard schedule else { return }
        output.eventLoop.execute { [self] in
            let bytes = pending.withLock { pending in
                defer {
                    pending.bytes.removeAll(keepingCapacity: true)
                    pending.scheduled = false
                }
                return pending.bytes
            }
            let context = output.value
            guard context.channel.isActive else { return }
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
        }
    }
}
