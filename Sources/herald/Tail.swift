import ArgumentParser
import HeraldCore

/// `herald tail PATTERN… [--group G] [--from …]`: prints events as they come, one envelope per line.
struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print live events matching the patterns, one JSON envelope per line.",
        discussion: """
            Runs until interrupted, or until --count events were printed. Dropped events (a gap in the \
            broker's seq, or the tool falling behind) are reported on standard error when it ends.
            """
    )

    @Argument(help: "Topic patterns, such as block.new.* or #.138.")
    var patterns: [String]

    @Option(help: "Read as a member of this consumer group (needs the durable log, not built yet).")
    var group: String?

    @Option(help: "Where a new group starts: latest, earliest, an offset or a time (with --group).")
    var from: String?

    @Option(help: "The broker's queue for this subscription, in events.")
    var buffer: Int?

    @Option(help: "Stop after this many events.")
    var count: Int?

    @OptionGroup var options: ClientOptions

    func validate() throws {
        if patterns.isEmpty { throw ValidationError("give at least one pattern, such as '#'") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        if group != nil || from != nil {
            throw fail("--group and --from need durable subscriptions; the durable log is not built yet (issue #4)")
        }
        let (printed, droppedByBroker, droppedByClient) = try await options.withClient { client in
            let subscription = try await client.subscribe(patterns, buffer: buffer)
            var printed = 0
            for await envelope in subscription {
                printLine(envelope.description)
                printed += 1
                if let count, printed >= count { break }
            }
            return (printed, subscription.droppedByBroker, subscription.droppedByClient)
        }
        if count.map({ printed < $0 }) ?? true {
            throw fail("the broker closed the connection after \(printed) events")
        }
        if droppedByBroker + droppedByClient > 0 {
            var standardError = StandardError()
            print(
                "herald: \(printed) events printed; dropped \(droppedByBroker) by the broker, \(droppedByClient) by this tool",
                to: &standardError
            )
        }
    }
}
