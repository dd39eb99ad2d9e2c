import Dispatch
import HeraldCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Syncs several files at once: the writer thread's round ends with one `fdatasync` per partition it wrote,
/// and issued one after the other each waits for its own flush of the disk, while issued together the
/// kernel's block layer merges their flushes (docs/storage.md, "Writing"). Helper threads wait for a round,
/// each takes the next file to sync until none is left, and the caller takes files too.
final class ParallelSync: Sendable {
    private let helpers: [DispatchSemaphore]
    private let finished = DispatchSemaphore(value: 0)
    private let round = StateLock(Round())

    private struct Round {
        var files: [LogFile] = []
        var next = 0
        var failures: [LogError?] = []
        var stopping = false
    }

    /// Starts `helpers` threads (none: every sync on the caller's thread), named `name-1`, `name-2`, ….
    init(helpers count: Int, name: String) {
        helpers = (0..<max(0, count)).map { _ in DispatchSemaphore(value: 0) }
        for (number, start) in helpers.enumerated() {
            let threadName = "\(name)-\(number + 1)"
            NamedThread.start(threadName) { [self] in
                while true {
                    start.wait()
                    if round.withLock({ $0.stopping }) { return }
                    syncRemaining()
                    finished.signal()
                }
            }
        }
    }

    /// Syncs every file and returns when all are synced: for each file, how its sync failed, if it did.
    func sync(_ files: [LogFile]) -> [LogError?] {
        guard files.count > 1, !helpers.isEmpty else {
            return files.map { file in
                do throws(LogError) {
                    try file.sync()
                    return nil
                } catch {
                    return error
                }
            }
        }
        round.withLock { $0 = Round(files: files, failures: Array(repeating: nil, count: files.count)) }
        let woken = min(helpers.count, files.count - 1)
        for start in helpers.prefix(woken) { start.signal() }
        syncRemaining()
        for _ in 0..<woken { finished.wait() }
        return round.withLock { round in
            defer { round = Round() }
            return round.failures
        }
    }

    /// Stops the helper threads; called once, when the log closes.
    func stop() {
        round.withLock { $0.stopping = true }
        for start in helpers { start.signal() }
    }

    private func syncRemaining() {
        while let (index, file) = round.withLock({ round -> (Int, LogFile)? in
            guard round.next < round.files.count else { return nil }
            defer { round.next += 1 }
            return (round.next, round.files[round.next])
        }) {
            do throws(LogError) {
                try file.sync()
            } catch {
                round.withLock { $0.failures[index] = error }
            }
        }
    }
}
