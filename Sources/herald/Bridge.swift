import ArgumentParser
import Foundation
import HeraldCore
import HeraldProtocol
import HeraldRabbitMQ
import HeraldServer

/// `herald bridge`: the RabbitMQ side of scale-out (docs/scale-out.md).
struct Bridge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set up RabbitMQ for the bridge.", subcommands: [BridgeSetup.self])
}

/// `herald bridge setup`: declares a consumer group's topology on RabbitMQ.
struct BridgeSetup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract:
            "Declare a consumer group on RabbitMQ: a consistent-hash exchange on chain_id, quorum queues per partition, dead letters.",
        discussion: """
            Consumers then read the queues herald.group.<group>.<n> with manual acknowledgements; each queue \
            has a single active consumer, so every chain's events are processed in order by one consumer at \
            a time. See docs/scale-out.md.
            """
    )

    @Option(help: "The RabbitMQ server.")
    var url = "amqp://guest:guest@127.0.0.1:5672"

    @Option(help: "The group's name: 1 to 64 of [a-z0-9_-].")
    var group: String

    @Option(help: "Queues the group's events are spread over.")
    var partitions = 8

    @Option(name: .customLong("pattern"), help: "A topic pattern of the group (repeat for more; default #).")
    var patterns: [String] = []

    @Option(help: "The bridge's topic exchange (bridge.rabbitmq.exchange).")
    var exchange = "herald.events"

    @Option(name: .customLong("max-deliver"), help: "Deliveries of a message before it is dead-lettered.")
    var maxDeliver = 4

    @Option(
        name: .customLong("rabbitmq-plugins"),
        help: "The rabbitmq-plugins command used to enable rabbitmq_consistent_hash_exchange when it is off.")
    var pluginsCommand = "rabbitmq-plugins"

    @Option(name: .customLong("rabbitmq-node"), help: "The node rabbitmq-plugins talks to (its -n).")
    var node: String?

    func validate() throws {
        if let problem = HeraldConfiguration.amqpURLProblem(url) { throw ValidationError("--url: \(problem)") }
        if let problem = HeraldConfiguration.amqpNameProblem(exchange) {
            throw ValidationError("--exchange: \(problem)")
        }
        guard ClientRequest.isValidModuleName(group) else {
            throw ValidationError("--group: must be 1 to 64 of [a-z0-9_-]")
        }
        guard (1...1024).contains(partitions) else { throw ValidationError("--partitions: must be 1 to 1024") }
        guard (1...1000).contains(maxDeliver) else { throw ValidationError("--max-deliver: must be 1 to 1000") }
        for pattern in patterns {
            do {
                _ = try TopicPattern(pattern)
            } catch {
                throw ValidationError("--pattern: \(error)")
            }
        }
    }

    func run() throws {
        let topology = GroupTopology(
            group: group, partitions: partitions, patterns: patterns.isEmpty ? ["#"] : patterns, exchange: exchange,
            maxDeliver: maxDeliver)
        do {
            for line in try topology.declare(url: url, enablePlugin: enablePlugin) { print(line) }
        } catch {
            throw fail("bridge setup: \(error)")
        }
    }

    /// Runs `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange`; `nil` when it worked.
    private func enablePlugin() -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [pluginsCommand] + (node.map { ["-n", $0] } ?? []) + ["enable", GroupTopology.plugin]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            return "\(pluginsCommand) could not be run: \(error.localizedDescription)"
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitForExit()
        guard process.terminationStatus == 0 else {
            return "\(pluginsCommand) exited with \(process.terminationStatus): "
                + text.split(separator: "\n").suffix(3).joined(separator: " ")
        }
        print("enabled the RabbitMQ plugin \(GroupTopology.plugin)")
        return nil
    }
}
