import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore
import HeraldProtocol
import UnixSignals

/// `herald tail PATTERN… [--group G] [--from …]`: prints events as they come, one envelope per line.
struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print live events matching the patterns, one JSON envelope per line.",
        discussion: """
            Runs until interrupted (SIGINT or SIGTERM: status 0), or until --count events were printed. \
            Dropped events (a gap in the broker's seq, or the tool falling behind) are reported on standard \
            error when it ends, interrupted too. With \
            --group it reads stored events as a member of that consumer group, at least once, and \
            acknowledges each event once it is printed.
            """
    )

    @Argument(help: "Topic patterns, such as block.new.* or #.138.")
    var patterns: [String]

    @Option(help: "Read stored events as a member of this consumer group, acknowledging each once printed.")
    var group: String?

    @Option(help: "Where a new group starts: latest, earliest, an offset or an RFC 3339 time (with --group).")
    var from: String?

    @Option(help: "The broker's queue for this subscription, in events.")
    var buffer: Int?

    @Option(help: "Stop after this many events.")
    var count: Int?

    @OptionGroup var options: ClientOptions

    /// Usage errors, found before the broker is asked: status 64, like a command line that does not parse.
    func validate() throws {
        if patterns.isEmpty { throw ValidationError("give at least one pattern, such as '#'") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if from != nil && group == nil { throw ValidationError("--from needs --group") }
        if let group, !ClientRequest.isValidModuleName(group) {
            throw ValidationError("--group must be a group name, 1 to 64 of a-z, 0-9, '_' and '-', not '\(group)'")
        }
        if group != nil && buffer != nil {
            throw ValidationError("--buffer is for live subscriptions, not with --group")
        }
        if let from, startPosition(from) == nil {
            throw ValidationError("--from must be latest, earliest, an offset or an RFC 3339 time, not '\(from)'")
        }
    }

    /// `--from` as the broker takes it, or `nil` when it is not one.
    private func startPosition(_ from: String) -> GroupStartPosition? {
        switch from {
        case "latest": return .latest
        case "earliest": return .earliest
        default:
            if let offset = Int64(from), offset >= 0 { return .offset(offset) }
            if let time = Timestamp.millisecondsSinceEpoch(from, anyOffset: true) {
                return .time(millisecondsSinceEpoch: time)
            }
            return nil
        }
    }

    func run() async throws {
        if let group {
            let start = from.flatMap(startPosition)
            let printed = try await options.withClient { client in
                let subscription = try await options.answered {
                    try await client.subscribe(patterns, group: group, from: start)
                }
                var printed = 0
                for await delivery in subscription {
                    printLine(delivery.envelope.description)
                    try await delivery.ack()
                    printed += 1
                    if let count, printed >= count { break }
                }
                return printed
            }
            if count.map({ printed < $0 }) ?? true {
                throw fail("the broker closed the connection after \(printed) events")
            }
            return
        }
        let interrupted = Latch()
        let (printed, droppedByBroker, droppedByClient) = try await options.withClient { client in
            let subscription = try await options.answered { try await client.subscribe(patterns, buffer: buffer) }
            // Ctrl-C (or a SIGTERM) ends the tail like `--count` does, so that it still says what it dropped.
            // Trapped once subscribed: until then the default action ends a tool still connecting at once.
            // A second signal ends the tool at once, status 130, as the signal's default action would have: the
            // first one's end may be held up (a broker that does not answer the close, a full standard output).
            let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
            Task {
                var count = 0
                for await _ in signals {
                    count += 1
                    guard count == 1 else { Foundation.exit(130) }
                    interrupted.open()
                    subscription.cancel()
                }
            }
            var printed = 0
            for await envelope in subscription {
                // Not the events still buffered: the interrupt means now.
                if interrupted.isOpen { break }
                printLine(envelope.description)
                printed += 1
                if let count, printed >= count { break }
            }
            return (printed, subscription.droppedByBroker, subscription.droppedByClient)
        }
        // Reported however the tail ends, before the broker's close if that is how.
        if droppedByBroker + droppedByClient > 0 {
            var standardError = StandardError()
            print(
                "herald: \(printed) events printed; dropped \(droppedByBroker) by the broker, \(droppedByClient) by this tool",
                to: &standardError
            )
        }
        if interrupted.isOpen { return }
        if count.map({ printed < $0 }) ?? true {
            throw fail("the broker closed the connection after \(printed) events")
        }
    }
}
