import NIOCore
import Synchronization

/// Something that writes to a connection on its event loop — a live subscription's ``DeliveryPump`` or a
/// durable one's ``GroupDeliveryPump`` — and runs again when woken, when the connection is writable, or on
/// the loop's next turn.
protocol ConnectionPump: AnyObject {
    func run(context: ChannelHandlerContext)
}

extension ConnectionPump {
    /// A wake-up callable from any thread that runs the pump on its connection's event loop, through the
    /// loop's ``PumpWakeups``. It holds the pump weakly: whoever keeps the wake-up (a subscription, a group
    /// member) does not keep the pump.
    func wakeUp(context: ChannelHandlerContext, wakeups: PumpWakeups) -> @Sendable () -> Void {
        let target = NIOLoopBound(WeakPump(self, context: context), eventLoop: context.eventLoop)
        return { wakeups.wake(target) }
    }

    /// Runs the pump again on the event loop's next turn, letting other work run first (unless the
    /// connection closed and the pump is gone by then).
    func runOnNextTurn(context: ChannelHandlerContext) {
        let target = NIOLoopBound(WeakPump(self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.execute { target.value.run() }
    }
}

/// The pumps of one event loop woken since it last ran them. A publish that wakes the pumps of many
/// subscribers on a loop (a fan-out to thousands of WebSockets) costs the loop one task that runs them all,
/// not a task — a closure, a place in the loop's queue — per pump.
final class PumpWakeups: Sendable {
    private let eventLoop: any EventLoop
    private let woken = Mutex<(pumps: [NIOLoopBound<WeakPump>], isScheduled: Bool)>(([], false))

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `pump` on the loop soon, after the pumps woken before it.
    func wake(_ pump: NIOLoopBound<WeakPump>) {
        let schedule = woken.withLock { woken in
            woken.pumps.append(pump)
            defer { woken.isScheduled = true }
            return !woken.isScheduled
        }
        guard schedule else { return }
        eventLoop.execute { [self] in
            var pumps: [NIOLoopBound<WeakPump>] = []
            woken.withLock { woken in
                swap(&pumps, &woken.pumps)
                woken.isScheduled = false
            }
            for pump in pumps { pump.value.run() }
        }
    }
}

/// The ``PumpWakeups`` of each event loop the broker's connections are served on.
final class LoopPumpWakeups: Sendable {
    private let byLoop = Mutex<[ObjectIdentifier: PumpWakeups]>([:])

    /// The wake-ups of `eventLoop`, made at its first connection.
    func wakeups(for eventLoop: any EventLoop) -> PumpWakeups {
        byLoop.withLock { byLoop in
            let key = ObjectIdentifier(eventLoop)
            if let wakeups = byLoop[key] { return wakeups }
            let wakeups = PumpWakeups(eventLoop: eventLoop)
            byLoop[key] = wakeups
            return wakeups
        }
    }
}

/// A pump as its wake-up sees it.
final class WeakPump {
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
