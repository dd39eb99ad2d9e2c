import ArgumentParser
import Foundation
import HeraldCore

/// The `herald` command-line tool.
@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald, the event bus of a blockchain node and the services around it.",
        version: "0.1.0",
        subcommands: [
            Serve.self, Publish.self, Tail.self, Stats.self, Replay.self, Groups.self, DeadLetters.self, Modules.self,
            Bridge.self, Bench.self, Catalog.self,
        ]
    )

    /// Runs the command line. A command line that does not parse (an unknown flag, a missing argument, a
    /// value out of range) fails with one line on standard error, `herald: <reason>`, and status 64 —
    /// what PROTOCOL.md §8 asks of a failure — rather than ArgumentParser's error, help and usage; `--help`
    /// and `--version` print as usual.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            guard code != .success, !(error is ExitCode) else { exit(withError: error) }
            let reason = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            var standardError = StandardError()
            print("herald: \(reason)", to: &standardError)
            // A command line that does not parse is a usage error (64); an error a command throws on its
            // way (a benchmark's socket, a file it cannot write) is "everything else" (2), as from `fail`.
            exit(withError: ExitCode(code == .validationFailure || code.rawValue == 0 ? 64 : 2))
        }
    }
}

/// `herald catalog`: the event types Herald knows.
struct Catalog: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the event types of the event catalog.")

    func run() {
        for eventType in EventCatalog.eventTypes { print(eventType) }
    }
}

/// Standard error as a `TextOutputStream`, for one-line failure reasons.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

/// Prints `message` as one line on standard error and exits with status 2.
func fail(_ message: String) -> ExitCode {
    var standardError = StandardError()
    print("herald: \(message)", to: &standardError)
    return ExitCode(2)
}
