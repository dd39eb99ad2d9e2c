import ArgumentParser
import HeraldCore
import HeraldProtocol

/// `herald stats [MODULE]`: delivery statistics per module (PROTOCOL.md §5).
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print delivery statistics per module.")

    @Argument(help: "Only this module.")
    var module: String?

    @OptionGroup var options: ClientOptions

    func run() async throws {
        let stats = try await options.withClient { client in
            try await options.answered { try await client.stats(module: module) }
        }
        let names = stats.keys.sorted()
        if options.json {
            var writer = JSONWriter()
            writer.append(statistics: stats)
            printLine(String(decoding: writer.bytes, as: UTF8.self))
            return
        }
        let width = max(6, names.map(\.count).max() ?? 0)
        printLine(pad("module", width) + "  " + pad("successful", 12) + "  " + pad("failed", 12) + "  channel_full")
        for name in names {
            let statistics = stats[name]!
            printLine(
                pad(name, width) + "  " + pad("\(statistics.successful)", 12) + "  " + pad("\(statistics.failed)", 12)
                    + "  \(statistics.channelFull)"
            )
        }
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }
}
