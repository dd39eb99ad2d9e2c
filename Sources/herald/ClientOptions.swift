import ArgumentParser
import Foundation
import HeraldClient
import HeraldProtocol

/// The options of every subcommand that talks to a running broker through its socket (PROTOCOL.md §8).
struct ClientOptions: ParsableArguments {
    @Option(help: "The broker's IPC socket.")
    var socket = "./herald-data/herald.sock"

    @Option(help: "The token to present (default: the HERALD_TOKEN environment variable).")
    var token: String?

    @Option(help: "The module name this tool says hello as.")
    var module = "herald-cli"

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Seconds to wait for the broker to answer (connecting, each request).")
    var timeout: Double = 10

    func validate() throws {
        try HeraldCLI.checkTimeout(timeout)
    }

    /// A client configuration that does not reconnect: a command reports a lost broker rather than wait.
    /// The client's own log is silenced: the command's one line on standard error says what went wrong.
    var configuration: HeraldClientConfiguration {
        var configuration = HeraldClientConfiguration(
            endpoint: .unixSocket(socket),
            module: module,
            version: Herald.configuration.version,
            token: token ?? ProcessInfo.processInfo.environment["HERALD_TOKEN"]
        )
        configuration.reconnect.enabled = false
        configuration.logger.logLevel = .critical
        return configuration
    }

    /// Runs `body` with a connected client, closing it afterwards; any failure becomes a one-line reason on
    /// standard error and a non-zero exit.
    func withClient<Result>(_ body: (HeraldClient) async throws -> Result) async throws -> Result {
        let client: HeraldClient
        do {
            client = try await answered { try await HeraldClient.connect(configuration) }
        } catch {
            throw fail(Self.reason(error))
        }
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch let exit as ExitCode {
            await client.close()
            throw exit
        } catch {
            await client.close()
            throw fail(Self.reason(error))
        }
    }

    /// Runs `body` (a request to the broker) within ``timeout``: see ``answered(within:_:)``.
    func answered<Result>(_ body: () async throws -> Result) async throws -> Result {
        try await HeraldCLI.answered(within: timeout, body)
    }

    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as ProtocolError: "\(error.code): \(error.message)"
        default: "\(error)"
        }
    }
}

/// Writes one line to standard output at once, for output read line by line by another program. When the
/// reader is gone (`herald tail '#' | head -n1`: the pipe is closed), the command ends quietly with status
/// 0, as `yes | head` does: SwiftNIO turns the pipe's signal off for the process, and Foundation's
/// `FileHandle.write` would stop it with a crash report instead.
func printLine(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeMutableBytes { write(STDOUT_FILENO, $0.baseAddress! + written, $0.count - written) }
        if count < 0 {
            if errno == EINTR { continue }
            if errno == EPIPE { exit(0) }
            return
        }
        written += count
    }
}

enum HeraldCLI {
    /// `--timeout` must be a number of seconds a command can wait: above 0, at most a day.
    static func checkTimeout(_ seconds: Double) throws {
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            throw ValidationError("--timeout must be a number of seconds above 0 and at most 86400")
        }
    }

    /// Runs `body`, ending the process with a one-line reason and status 2 if it has not finished within
    /// `seconds`: a broker that accepts connections but does not answer (stopped, overloaded) must not hang
    /// a script or a health check (PROTOCOL.md §8).
    static func answered<Result>(within seconds: Double, _ body: () async throws -> Result) async throws -> Result {
        let watchdog = Task.detached {
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            var standardError = StandardError()
            print("herald: the broker did not answer within \(seconds) s (--timeout)", to: &standardError)
            exit(2)
        }
        defer { watchdog.cancel() }
        return try await body()
    }
}
