import DequeModule

/// Keeps a connection's replies in request order (PROTOCOL.md §2.1), although some are only known later: a
/// confirmed publish of a stored event is answered once the event is durable, an `ack` with an `id` once the
/// group's state is written. Such a request reserves a slot; while any slot is unfilled, every later reply
/// — and what must follow a reply, such as the start of a subscription's deliveries after its `ok`, or the
/// close after a `bye` — waits behind it, and goes out when the slots before it are filled. With nothing
/// reserved, replies are written at once, as before. Used on the connection's event loop only.
final class ReplyOrder {
    private enum Entry {
        /// A reply still to come.
        case slot(UInt64)
        /// Replies that came after an unfilled slot.
        case replies([UInt8])
        /// What runs once every reply before it is written.
        case action(() -> Void)
    }

    private var entries = Deque<Entry>()
    private var filled: [UInt64: [UInt8]] = [:]
    private var lastSlot: UInt64 = 0

    /// Whether replies must wait: a slot before them is not filled.
    var isHolding: Bool { !entries.isEmpty }

    /// A place for a reply that comes later, after every reply so far and before every later one.
    func reserve() -> UInt64 {
        lastSlot += 1
        entries.append(.slot(lastSlot))
        return lastSlot
    }

    /// Gives back the slot just reserved: its reply came at once after all.
    func cancel(_ slot: UInt64) {
        guard case .slot(slot) = entries.last else { preconditionFailure("only the last slot can be given back") }
        entries.removeLast()
    }

    /// Queues replies behind the unfilled slots.
    func hold(_ replies: [UInt8]) {
        guard !replies.isEmpty else { return }
        entries.append(.replies(replies))
    }

    /// Runs `action` once every reply queued so far is written (at once when nothing waits).
    func then(_ action: @escaping () -> Void) {
        if entries.isEmpty { action() } else { entries.append(.action(action)) }
    }

    /// The reply of `slot`; it goes out with ``drain(_:)`` once the slots before it are filled.
    func fill(_ slot: UInt64, with reply: [UInt8]) {
        filled[slot] = reply
    }

    /// Writes, in order, every reply no unfilled slot holds back, and runs the actions between them.
    func drain(_ write: ([UInt8]) -> Void) {
        var ready: [UInt8] = []
        while let first = entries.first {
            switch first {
            case .slot(let slot):
                guard let reply = filled.removeValue(forKey: slot) else {
                    if !ready.isEmpty { write(ready) }
                    return
                }
                entries.removeFirst()
                ready += reply
            case .replies(let replies):
                entries.removeFirst()
                ready += replies
            case .action(let action):
                entries.removeFirst()
                if !ready.isEmpty { write(ready) }
                ready.removeAll()
                action()
            }
        }
        if !ready.isEmpty { write(ready) }
    }
}
