import Dispatch
import Foundation
import Synchronization

/// The `herald` executable built next to these tests, run as users and scripts run it.
///
/// Nothing here waits with `Process.waitUntilExit()`: on Linux it spins its run loop, a whole core for as
/// long as the child runs, and on a 2-core machine a few such waits starve every other test. The exit is
/// learnt from Foundation's `terminationHandler` instead, and blocking reads run on threads of their own,
/// never on the threads every test's tasks share.
struct HeraldRun {
    static let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("herald").path

    let process: Process
    let output: Pipe
    let errors: Pipe
    private let exit: ExitStatus

    /// Starts `herald` (or `program`) with `arguments` in `directory` (the current directory when `nil`).
    static func start(
        _ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
        program: String = executable
    ) throws -> HeraldRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = environment }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        // Set before `run`, so that an exit however early is not missed.
        let exit = ExitStatus()
        process.terminationHandler = { exit.record($0.terminationStatus) }
        try process.run()
        return HeraldRun(process: process, output: output, errors: errors, exit: exit)
    }

    /// The next line on standard output, or `nil` if the process closed it first.
    func nextLine() async -> String? {
        let output = self.output
        return await onOwnThread {
            var bytes: [UInt8] = []
            while true {
                let chunk = output.fileHandleForReading.readData(ofLength: 1)
                guard let byte = chunk.first else { return nil }
                if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
                bytes.append(byte)
            }
        }
    }

    /// The first line on standard output (for a process that has printed nothing yet).
    func firstLine() async -> String? { await nextLine() }

    /// How long ``finish()`` waits before it kills the process (a test expecting an exit then fails on
    /// the status and the missing message instead of hanging the suite).
    static let exitDeadline: DispatchTimeInterval = .seconds(45)

    /// Waits for the process to exit and returns its status and standard error; kills it with SIGKILL if
    /// it has not exited after ``exitDeadline``.
    func finish() async -> (status: Int32, errors: String) {
        let (status, _, errors) = await finish(readingOutput: false)
        return (status, errors)
    }

    /// Waits for the process to exit and returns its status, standard output and standard error.
    func finishWithOutput() async -> (status: Int32, output: String, errors: String) {
        await finish(readingOutput: true)
    }

    /// Reads standard error (and output) while the process runs, so that a child writing more than a
    /// pipe holds is not blocked from exiting.
    private func finish(readingOutput: Bool) async -> (status: Int32, output: String, errors: String) {
        let process = self.process
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.exitDeadline) {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let (output, errors) = (self.output, self.errors)
        async let errorText = onOwnThread { Self.readToEnd(errors) }
        async let outputText = readingOutput ? onOwnThread { Self.readToEnd(output) } : ""
        let status = await exit.wait()
        return (status, await outputText, await errorText)
    }

    private static func readToEnd(_ pipe: Pipe) -> String {
        String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }
}

/// A child's exit status, told by its `terminationHandler`, awaited by any number of tasks.
private final class ExitStatus: Sendable {
    private let state = Mutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))

    func record(_ status: Int32) {
        let waiters = state.withLock { state in
            state.status = status
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = state.withLock { state -> Int32? in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }
}
