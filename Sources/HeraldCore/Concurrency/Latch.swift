import Synchronization

/// A one-way flag that tasks can wait for: closed until ``open()``, open for good after. A waiting task
/// that is cancelled stops waiting. ``isOpen`` is a lock-free read (the broker asks it on every publish).
package final class Latch: Sendable {
    private struct State {
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = StateLock(State())
    /// Set under `state`'s lock, before the waiters are resumed; read without it by ``isOpen``.
    private let opened = Atomic<Bool>(false)

    package init() {}

    package var isOpen: Bool { opened.load(ordering: .acquiring) }

    /// Opens the latch and resumes every waiter; returns whether this call opened it (only the first does).
    @discardableResult
    package func open() -> Bool {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            guard !opened.load(ordering: .relaxed) else { return nil }
            opened.store(true, ordering: .releasing)
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume() }
        return true
    }

    /// Returns once the latch is open (at once if it is), or when the calling task is cancelled.
    package func wait() async {
        let number = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Under the lock `open` takes: a waiter either sees the latch open or is resumed by it.
                let now = state.withLock { state in
                    if opened.load(ordering: .relaxed) || Task.isCancelled { return true }
                    state.waiters[number] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: number) }?.resume()
        }
    }
}
