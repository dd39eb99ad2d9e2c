import CHeraldSpawn
import Foundation
import HeraldCore
import Logging

/// How a module's process ended.
public enum ModuleExit: Sendable, Equatable, CustomStringConvertible {
    /// It exited with this status.
    case exited(Int32)
    /// A signal killed it.
    case signaled(Int32)

    /// A non-zero status or a signal: a crash, unless the broker asked it to stop.
    public var isFailure: Bool { self != .exited(0) }

    public var description: String {
        switch self {
        case .exited(let status): "exit status \(status)"
        case .signaled(let signal): "killed by signal \(signal)\(Self.signalNames[signal].map { " (\($0))" } ?? "")"
        }
    }

    private static let signalNames: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGABRT: "SIGABRT",
        SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGPIPE: "SIGPIPE",
        SIGTERM: "SIGTERM",
    ]
}

/// One run of a module's executable: started in its own process group with the module's environment and
/// limits, its standard output and error read line by line into the broker's log, its exit noticed the
/// moment it happens.
///
/// Each run has one thread of its own. It forks the child (so the child's parent-death signal, which Linux
/// ties to the forking thread, fires only if the broker dies) and then waits in `poll` on the child's two
/// pipes and its pidfd: the pipes are always read, so a module that writes a lot never blocks on a full
/// pipe, and the exit wakes the thread at once.
final class ModuleProcess: Sendable {
    /// What to start.
    struct Launch: Sendable {
        var module: String
        var executable: String
        var arguments: [String]
        var environment: [String: String]
        var directory: String
        var limits: ModuleManifest.Limits
        /// The supervisor's run number, for the log.
        var run = 0
    }

    private struct State {
        var pid: Int32 = 0
        var reaped = false
        /// The last lines of standard error, for `module.crashed`.
        var stderrTail: [String] = []
    }

    private let state = StateLock(State())

    /// The most bytes read from each of an exited module's pipes before its exit is reported.
    static let drainLimit = 4 << 20

    /// How many of the last stderr lines `module.crashed` carries.
    static let tailLines = 20
    /// Longer lines are logged in pieces of this many bytes.
    static let longestLine = 16 * 1024

    private init() {}

    /// The process id, which is also its process group's id.
    var pid: Int32 { state.withLock { $0.pid } }

    /// Starts `launch`; `exited` is called once, from the run's thread, when the process has exited and its
    /// pipes are read, with the last lines of its standard error. Throws the `errno` description when the
    /// process cannot be started.
    static func start(
        _ launch: Launch, logger: Logger, exited: @escaping @Sendable (ModuleExit, [String]) -> Void
    ) async throws(ModuleProcessError) -> ModuleProcess {
        let process = ModuleProcess()
        let started: ModuleProcessError? = await withCheckedContinuation { continuation in
            let running = NamedThread.tryStart("module-\(launch.module)") {
                process.run(launch, logger: logger, started: { continuation.resume(returning: $0) }, exited: exited)
            }
            // No thread to watch it: the module is not started (a start failure, by its restart policy).
            if !running { continuation.resume(returning: ModuleProcessError(EAGAIN, "no thread to run it")) }
        }
        if let started { throw started }
        return process
    }

    /// Sends `signal` to the process group, unless the process was already reaped (its id may belong to
    /// another process by now).
    func signal(_ signal: Int32) {
        state.withLock { state in
            guard !state.reaped, state.pid > 0 else { return }
            if kill(-state.pid, signal) != 0 { kill(state.pid, signal) }
        }
    }

    /// Whether the process has exited, even if the run's thread has not reaped it and reported the exit yet
    /// (a loaded machine can take a while): `waitid` with `WNOWAIT` looks without reaping.
    var hasExited: Bool {
        state.withLock { state in
            guard !state.reaped, state.pid > 0 else { return state.reaped }
            var info = siginfo_t()
            let result = waitid(P_PID, id_t(state.pid), &info, WEXITED | WNOHANG | WNOWAIT)
            // ECHILD: the run's thread reaped it just now.
            if result != 0 { return errno == ECHILD }
            return info._sifields._sigchld.si_pid == state.pid
        }
    }

    /// The last lines the process wrote to standard error.
    var lastErrorLines: [String] { state.withLock { $0.stderrTail } }

    // MARK: The run's thread

    private func run(
        _ launch: Launch, logger: Logger, started: (ModuleProcessError?) -> Void,
        exited: @Sendable (ModuleExit, [String]) -> Void
    ) {
        guard let output = Self.pipe() else { return started(ModuleProcessError(errno, "pipe")) }
        guard let errors = Self.pipe() else {
            close(output.read)
            close(output.write)
            return started(ModuleProcessError(errno, "pipe"))
        }
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        var pid: pid_t = 0
        let status = Self.spawn(launch, input: input, output: output.write, errors: errors.write, pid: &pid)
        close(input)
        close(output.write)
        close(errors.write)
        guard status == 0 else {
            close(output.read)
            close(errors.read)
            return started(ModuleProcessError(status, "cannot start \(launch.executable)"))
        }
        state.withLock { $0.pid = pid }
        let exitSignal = herald_pidfd_open(pid)
        // Logged here, before anything of its exit can be: a process that fails at once is seen to start
        // before it is seen to crash.
        logger.info(
            "module started",
            metadata: ["module": "\(launch.module)", "module.pid": "\(pid)", "module.run": "\(launch.run)"])
        started(nil)

        var streams = [
            OutputStream(descriptor: output.read, name: "stdout"),
            OutputStream(descriptor: errors.read, name: "stderr"),
        ]
        var logger = logger
        logger[metadataKey: "module"] = "\(launch.module)"
        logger[metadataKey: "module.pid"] = "\(pid)"
        let emit: (String, String) -> Void = { stream, line in
            logger.info("\(line)", metadata: ["module.stream": "\(stream)"])
            guard stream == "stderr" else { return }
            self.state.withLock { state in
                state.stderrTail.append(line)
                if state.stderrTail.count > Self.tailLines {
                    state.stderrTail.removeFirst(state.stderrTail.count - Self.tailLines)
                }
            }
        }
        // The exit is noticed on the pidfd, whatever the pipes do: a module may close its standard output and
        // error (a shell script that sends them to a file, then `exec`s) and run on. Without a pidfd (Linux
        // before 5.3) it is noticed when both pipes close.
        var exitNoticed = false
        while exitSignal >= 0 || streams.contains(where: { !$0.isClosed }) {
            var descriptors = streams.map {
                pollfd(fd: $0.isClosed ? -1 : $0.descriptor, events: Int16(POLLIN), revents: 0)
            }
            if exitSignal >= 0 { descriptors.append(pollfd(fd: exitSignal, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in streams.indices where descriptors[index].revents != 0 {
                streams[index].read(emit: emit)
            }
            if exitSignal >= 0, descriptors[2].revents != 0 {
                exitNoticed = true
                break
            }
        }
        // What the process leaves in its group (children that outlived it, holding its connection or
        // doing its work) is killed, as systemd kills what remains of a service whose main process exited.
        // Signalled before the process is reaped: until then the group's id cannot name another group. And
        // before its pipes are drained: a child still writing to them would keep the drain going for ever.
        if exitNoticed { kill(-pid, SIGKILL) }
        // The process has exited (or closed both pipes): what it wrote last is read before the exit is
        // reported, without waiting for children of its own that may hold the pipes open — at most
        // ``drainLimit`` bytes a pipe, in case one left the group and still writes.
        for index in streams.indices {
            _ = fcntl(streams[index].descriptor, F_SETFL, O_NONBLOCK)
            streams[index].read(emit: emit, untilEmpty: true, limit: Self.drainLimit)
            streams[index].flush(emit: emit)
            close(streams[index].descriptor)
        }
        // Marked reaped before it is: `signal` (which signals under the same lock) then never sends to an id
        // that, reaped, may belong to another process already. Until the reap it is a zombie, and its id is
        // its own.
        var exitInfo = siginfo_t()
        while waitid(P_PID, id_t(pid), &exitInfo, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        state.withLock { $0.reaped = true }
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        if exitSignal >= 0 { close(exitSignal) }
        // WIFEXITED and friends are macros Swift does not import.
        let exit: ModuleExit =
            waitStatus & 0x7f == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(waitStatus & 0x7f)
        exited(exit, lastErrorLines)
    }

    /// A pipe whose ends are closed on exec (the child gets its copies through `dup2`).
    private static func pipe() -> (read: Int32, write: Int32)? {
        var ends: [Int32] = [-1, -1]
        guard Glibc.pipe(&ends) == 0 else { return nil }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    private static func spawn(_ launch: Launch, input: Int32, output: Int32, errors: Int32, pid: inout pid_t) -> Int32 {
        let arguments = ([launch.executable] + launch.arguments).map { strdup($0) } + [nil]
        let environment = launch.environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            arguments.forEach { free($0) }
            environment.forEach { free($0) }
        }
        return launch.executable.withCString { path in
            launch.directory.withCString { directory in
                arguments.withUnsafeBufferPointer { argv in
                    environment.withUnsafeBufferPointer { envp in
                        var request = herald_spawn_request(
                            path: path, argv: argv.baseAddress, envp: envp.baseAddress, directory: directory,
                            stdin_fd: input, stdout_fd: output, stderr_fd: errors,
                            memory_bytes: Int64(launch.limits.memoryMB ?? 0) << 20,
                            open_files: Int64(launch.limits.openFiles ?? 0),
                            soft_open_files: Int64(OpenFileLimit.beforeRaise ?? 0))
                        return herald_spawn(&request, &pid)
                    }
                }
            }
        }
    }
}

/// Why a module's process could not be started.
struct ModuleProcessError: Error, Sendable, CustomStringConvertible {
    let code: Int32
    let context: String

    init(_ code: Int32, _ context: String) {
        self.code = code
        self.context = context
    }

    var description: String { "\(context): \(String(cString: strerror(code)))" }
}

/// One of a child's output pipes, cut into lines.
struct OutputStream {
    let descriptor: Int32
    let name: String
    private(set) var isClosed = false
    private var partial: [UInt8] = []

    init(descriptor: Int32, name: String) {
        self.descriptor = descriptor
        self.name = name
    }

    /// Reads what is there (once, or until nothing is left or `limit` bytes were read), emitting each whole
    /// line.
    mutating func read(emit: (String, String) -> Void, untilEmpty: Bool = false, limit: Int = .max) {
        guard !isClosed else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        repeat {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                if count == 0 { isClosed = true }
                return
            }
            var start = 0
            for index in 0..<count where buffer[index] == UInt8(ascii: "\n") {
                partial += buffer[start..<index]
                emitPieces(emit)
                emit(name, String(decoding: partial, as: UTF8.self))
                partial.removeAll(keepingCapacity: true)
                start = index + 1
            }
            partial += buffer[start..<count]
            emitPieces(emit)
            total += count
        } while untilEmpty && total < limit
    }

    /// Emits the line so far in pieces of ``ModuleProcess/longestLine`` bytes while there is more than one,
    /// keeping the rest (at most a piece) for the line's end.
    private mutating func emitPieces(_ emit: (String, String) -> Void) {
        var taken = 0
        while partial.count - taken > ModuleProcess.longestLine {
            emit(name, String(decoding: partial[taken..<(taken + ModuleProcess.longestLine)], as: UTF8.self))
            taken += ModuleProcess.longestLine
        }
        partial.removeFirst(taken)
    }

    /// Emits a last line that had no newline.
    mutating func flush(emit: (String, String) -> Void) {
        guard !partial.isEmpty else { return }
        emit(name, String(decoding: partial, as: UTF8.self))
        partial.removeAll()
    }
}
