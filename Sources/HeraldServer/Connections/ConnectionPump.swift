import NIOCore
import NIOPosix
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

    /// Runs `pump` on the loop soon, after the pumps woken before it: at once, or, when the calling thread
    /// is handling a read's frames (``WakeupsHeldForARead``), once it has handled them all.
    func wake(_ pump: NIOLoopBound<WeakPump>) {
        let schedule = woken.withLock { woken in
            woken.pumps.append(pump)
            defer { woken.isScheduled = true }
            return !woken.isScheduled
        }
        guard schedule, !WakeupsHeldForARead.hold(self) else { return }
        runWoken()
    }

    /// Runs the pumps woken so far on the loop.
    fileprivate func runWoken() {
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

/// The wake-ups a thread makes while it handles the frames of one read, held until it has handled them all:
/// a publisher's read of a hundred events then wakes a subscriber's event loop once, not once per event.
/// Waking a loop that waits is a system call on its `eventfd`, and it was an eighth of the publishing loop's
/// time in `herald bench pubsub` 1→1, where the subscriber's loop keeps up and waits between events
/// (docs/benchmarks.md, "Seventh session"). Events wait at most for the rest of their read's frames.
enum WakeupsHeldForARead {
    /// What one thread holds: `nil` outside ``holding(_:)``. Only ever touched by its own thread.
    private final class Held: @unchecked Sendable {
        var wakeups: [PumpWakeups]? = nil
    }

    private static let held = ThreadSpecificVariable<Held>()

    /// Runs `body`, making the loop wake-ups it causes when it returns.
    static func holding<Result>(_ body: () -> Result) -> Result {
        let thread: Held
        if let existing = held.currentValue {
            thread = existing
        } else {
            thread = Held()
            held.currentValue = thread
        }
        // Nested: the outer call makes them.
        guard thread.wakeups == nil else { return body() }
        thread.wakeups = []
        defer {
            let wakeups = thread.wakeups ?? []
            thread.wakeups = nil
            for wakeup in wakeups { wakeup.runWoken() }
        }
        return body()
    }

    /// Holds `wakeups`'s run until the calling thread's ``holding(_:)`` returns; `false` outside one.
    fileprivate static func hold(_ wakeups: PumpWakeups) -> Bool {
        guard let thread = held.currentValue, thread.wakeups != nil else { return false }
        thread.wakeups!.append(wakeups)
        return true
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
