import NIOCore

/// Something that writes to a connection on its event loop — a live subscription's ``DeliveryPump`` or a
/// durable one's ``GroupDeliveryPump`` — and runs again when woken, when the connection is writable, or on
/// the loop's next turn.
protocol ConnectionPump: AnyObject {
    func run(context: ChannelHandlerContext)
}

extension ConnectionPump {
    /// A wake-up callable from any thread that runs the pump on its connection's event loop. It holds the
    /// pump weakly: whoever keeps the wake-up (a subscription, a group member) does not keep the pump.
    func wakeUp(context: ChannelHandlerContext) -> @Sendable () -> Void {
        let eventLoop = context.eventLoop
        let target = NIOLoopBound(WeakPump(self, context: context), eventLoop: eventLoop)
        return { eventLoop.execute { target.value.run() } }
    }

    /// Runs the pump again on the event loop's next turn, letting other work run first (unless the
    /// connection closed and the pump is gone by then).
    func runOnNextTurn(context: ChannelHandlerContext) {
        let target = NIOLoopBound(WeakPump(self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.execute { target.value.run() }
    }
}

/// A pump as its wake-up sees it.
private final class WeakPump {
    weak var pump: (any ConnectionPump)?
    let context: ChannelHandlerContext

    init(_ pump: any ConnectionPump, context: ChannelHandlerContext) {
        self.pump = pump
        self.context = context
    }

    func run() {
        pump?.run(context: context)
    }
}
