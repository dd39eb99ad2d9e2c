import Dispatch
import Foundation

/// The `herald` executable built next to these tests, run as users and scripts run it.
struct HeraldRun {
    static let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("herald").path

    let process: Process
    let output: Pipe
    let errors: Pipe

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
        try process.run()
        return HeraldRun(process: process, output: output, errors: errors)
    }

    /// The next line on standard output, or `nil` if the process closed it first.
    func nextLine() async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var bytes: [UInt8] = []
                while true {
                    let chunk = output.fileHandleForReading.readData(ofLength: 1)
                    guard let byte = chunk.first else { return continuation.resume(returning: nil) }
                    if byte == UInt8(ascii: "\n") {
                        return continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
                    }
                    bytes.append(byte)
                }
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
        let process = self.process
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.exitDeadline) {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                continuation.resume(returning: (process.terminationStatus, text))
            }
        }
    }

    /// Waits for the process to exit and returns its status, standard output and standard error.
    func finishWithOutput() async -> (status: Int32, output: String, errors: String) {
        let (status, errors) = await finish()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (status, text, errors)
    }
}
