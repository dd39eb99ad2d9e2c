#if canImport(Glibc)
    import Glibc
#endif

/// A plain POSIX thread with a name `top -H` and `/proc/…/task/…/comm` show, for work that blocks in system
/// calls (the log's writer and syncs, the groups' committer, a module's output reader) and so does not belong
/// on Swift concurrency's pool. Foundation's `Thread.name` is not used: on Linux a name longer than 15 bytes
/// is refused and the thread keeps its creator's name; here it is cut to 15 bytes.
package enum NamedThread {
    /// Starts a detached thread named `name` (its first 15 bytes) running `body`; stops the process if the
    /// system cannot make one: for the threads a component starts with, which it cannot run without.
    package static func start(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let created = tryStart(name, body)
        precondition(created, "pthread_create failed for \(name)")
    }

    /// Starts a detached thread named `name` running `body`; `false`, and `body` not run, when the system
    /// cannot make one (out of threads or memory): for threads started while running, whose callers can do
    /// the work another way or report it.
    package static func tryStart(_ name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        final class Box: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
        let created = pthread_create(
            &thread, nil,
            { argument in
                let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
                NamedThread.setName(box.name)
                box.body()
                return nil
            }, box)
        guard created == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    /// Names the calling thread (at most 15 bytes are kept).
    private static func setName(_ name: String) {
        // What `pthread_setname_np` does on Linux, which Swift's Glibc module does not declare.
        let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
