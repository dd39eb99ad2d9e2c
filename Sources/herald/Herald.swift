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
