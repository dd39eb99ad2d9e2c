import NIOCore
import Synchronization

/// Replies written from other threads (a confirmed publish's `ok` from the log's writer thread, an ack's
/// `ok` from the group committer) into the slots their requests reserved (``ReplyOrder``): gathered under a
/// lock and handed to the connection's event loop by one task, so that a group commit confirming hundreds of
/// publishes costs one hop to the loop and one flush, not one each.
final class Outbox: Sendable {
    /// The connection's output (``BrokerConnection/output``) and its reply order, used on its event loop only.
    private let output: NIOLoopBound<(context: ChannelHandlerContext, order: ReplyOrder)>
    private let pending = Mutex<(replies: [(slot: UInt64, bytes: [UInt8])], scheduled: Bool)>(([], false))

    init(context: ChannelHandlerContext, order: ReplyOrder) {
        self.output = NIOLoopBound((context, order), eventLoop: context.eventLoop)
    }

    /// The reply (whole frames) of `slot`.
    func send(_ bytes: [UInt8], into slot: UInt64) {
        let schedule = pending.withLock { pending in
            pending.replies.append((slot, bytes))
            defer { pending.scheduled = true }
            return !pending.scheduled
        }
        guard schedule else { return }
        output.eventLoop.execute { [self] in
            let replies = pending.withLock { pending in
                defer {
                    pending.replies.removeAll(keepingCapacity: true)
                    pending.scheduled = false
                }
                return pending.replies
            }
            let (context, order) = output.value
            guard context.channel.isActive else { return }
            for reply in replies { order.fill(reply.slot, with: reply.bytes) }
            var written = false
            order.drain { bytes in
                context.write(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
                written = true
            }
            if written { context.flush() }
        }
    }
}
