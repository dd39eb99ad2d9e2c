import ArgumentParser
import HeraldCore

/// The `herald` command-line tool.
@main
struct Herald: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Herald, the event bus of a blockchain node and the services around it.",
        version: "0.1.0",
        subcommands: [Catalog.self]
    )
}

/// `herald catalog`: the event types Herald knows, with their payload fields.
struct Catalog: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the event catalog's event types.")

    func run() {
        for type in EventCatalog.eventTypes.sorted() { print(type) }
    }
}
