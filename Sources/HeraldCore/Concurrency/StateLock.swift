import Synchronization

#if HERALD_TSAN
    @_silgen_name("__tsan_acquire")
    private func tsanAcquire(_ address: UnsafeRawPointer)

    @_silgen_name("__tsan_release")
    private func tsanRelease(_ address: UnsafeRawPointer)
#endif

/// The lock around a component's state: a `Mutex`, which ThreadSanitizer can also be told about.
///
/// On Linux `Mutex` is a priority-inheritance futex: a contended lock is handed over inside the kernel,
/// where ThreadSanitizer cannot see it, so it reports races between critical sections of one lock (a
/// two-thread counter under `Mutex` is enough to show it). Built with `-DHERALD_TSAN` (`make tsan`), every
/// critical section announces its acquire and release; other builds compile to the bare `Mutex`.
package struct StateLock<State: ~Copyable>: ~Copyable, @unchecked Sendable {
    private let mutex: Mutex<State>
    #if HERALD_TSAN
        private let token = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    #endif

    package init(_ state: consuming sending State) {
        mutex = Mutex(state)
    }

    #if HERALD_TSAN
        deinit {
            token.deallocate()
        }
    #endif

    package func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout sending State) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        try mutex.withLock { (state: inout sending State) throws(Failure) -> sending Result in
            #if HERALD_TSAN
                tsanAcquire(token)
                defer { tsanRelease(token) }
            #endif
            return try body(&state)
        }
    }
}
