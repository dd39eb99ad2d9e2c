import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The process's limit of open files (`RLIMIT_NOFILE`). Every connection, WebSocket and segment file takes
/// a descriptor, and many systems start a process with a soft limit of 1 024 — a broker serving 10 000
/// WebSockets needs more. `herald serve` raises the soft limit to the hard one at start (as nats-server
/// and Go programs do) and logs both; the modules it starts get the soft limit it had before, unless their
/// manifest sets `limits.open_files` (docs/operations.md "Open files").
public enum OpenFileLimit {
    private static let original = Mutex<Int?>(nil)

    /// The soft limit before ``raiseToHardLimit()``, once it ran.
    static var beforeRaise: Int? { original.withLock { $0 } }

    /// Raises the soft limit to the hard limit; returns both, before and after (equal when it was already
    /// there or could not be raised).
    @discardableResult
    public static func raiseToHardLimit() -> (before: Int, after: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        let before = Int(clamping: limit.rlim_cur)
        original.withLock { $0 = $0 ?? before }
        // An unlimited hard limit (`RLIM_INFINITY`) cannot be the soft one: the kernel's own ceiling (`fs.nr_open`) is then.
        let ceiling = limit.rlim_max == rlim_t.max ? rlim_t(1 << 20) : limit.rlim_max
        guard limit.rlim_cur < ceiling else { return (before, before) }
        limit.rlim_cur = ceiling
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (before, before) }
        return (before, Int(clamping: limit.rlim_cur))
    }
}
