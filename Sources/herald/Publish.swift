import ArgumentParser
import HeraldCore

/// `herald publish TYPE [--chain-id N] [--payload JSON] [--id ID]`: one confirmed publish.
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish one event and wait for the broker to accept it.",
        discussion: "Prints the event's id, or with --json the broker's answer: event_id, duplicate, offset, partition."
    )

    @Argument(help: "The event type, such as block.new.")
    var eventType: String

    @Option(name: .customLong("chain-id"), help: "The chain id.")
    var chainID: Int64?

    @Option(help: "The payload, any JSON value.")
    var payload: String?

    @Option(help: "The event id (default: a new UUID).")
    var id: String?

    @Option(help: "The partition key (default: the chain id, else the event type).")
    var key: String?

    @OptionGroup var options: ClientOptions

    func run() async throws {
        let envelope: EventEnvelope
        do {
            envelope = try EventEnvelope(
                eventType: eventType,
                eventID: id,
                chainID: chainID,
                key: key,
                payload: try payload.map { try RawJSON(validating: $0) }
            )
        } catch {
            throw fail("invalid_event: \(error)")
        }
        let receipt = try await options.withClient { client in
            try await options.answered { try await client.publishConfirmed(envelope) }
        }
        if options.json {
            var writer = JSONWriter()
            writer.append(raw: "{\"event_id\":")
            writer.append(string: receipt.eventID)
            writer.append(raw: receipt.duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false")
            if let offset = receipt.offset, let partition = receipt.partition {
                writer.append(raw: ",\"offset\":")
                writer.append(integer: offset)
                writer.append(raw: ",\"partition\":")
                writer.append(integer: partition)
            }
            writer.append(raw: "}")
            printLine(String(decoding: writer.bytes, as: UTF8.self))
        } else {
            printLine(receipt.eventID)
        }
    }
}
