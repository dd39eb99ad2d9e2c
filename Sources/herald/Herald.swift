import ArgumentParser
import Foundation
import HeraldCore

/// The `herald` command-line tool.
@main
struct Herald: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald, the event bus of a blockchain node and the services around it.",
        version: "0.1.0",
        subcommands: [Serve.self, Catalog.self]
    )
}

/// `herald serve`: the broker daemon. Not built yet; it says so instead of pretending.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the broker daemon (not built yet).")

    func run() throws {
        var standardError = StandardError()
        print(
            "herald serve: not built yet: the broker daemon (IPC socket, routing, modules) arrives with issue #3",
            to: &standardError
        )
        throw ExitCode(2)
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
