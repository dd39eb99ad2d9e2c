import ArgumentParser
import Foundation
import HeraldCore
import HeraldProtocol

/// `herald bench parse`: the publishing event loop's own work on one event, parsing the publish frame and
/// sealing the envelope the broker stores and delivers, timed in this process on one thread, with no
/// socket, no other thread and no broker. On this shared two-core machine an end-to-end run moves by ±20 %
/// from run to run; this moves by a few percent, so that a change to the parser or the envelope's encoding
/// can be told from the noise (docs/benchmarks.md).
struct BenchParse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse",
        abstract: "Time parsing publish frames and sealing their envelopes, in process.",
        discussion: """
            The frames are those `herald bench pubsub` sends (event_type, event_id, timestamp and an object \
            payload of --payload-size bytes). Each round parses every frame, then seals every event as the broker \
            does for a stored one (metadata.producer, offset and partition); the best round of each is \
            reported in nanoseconds per event.
            """
    )

    @Option(help: "Frames per round.")
    var events = 200_000

    @Option(help: "Rounds; the fastest is reported.")
    var rounds = 7

    @Option(name: .customLong("payload-size"), help: "Bytes of each event's payload (at least 40).")
    var payloadSize = 256

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard events >= 1, rounds >= 1 else { throw ValidationError("--events and --rounds must be at least 1") }
        guard payloadSize >= 40 else { throw ValidationError("--payload-size must be at least 40") }
    }

    func run() throws {
        let template = BenchPubSub.Template(payloadSize: payloadSize)
        let frames = (0..<events).map { index in
            var frame = template.frame
            BenchPubSub.writeDigits(UInt64(index), into: &frame, at: template.idDigits)
            return Array(frame[template.textStart...])
        }
        var parsed: [EnvelopeFields] = []
        parsed.reserveCapacity(events)
        for frame in frames { parsed.append(try Self.publishedFields(frame)) }
        // What each round makes is dropped at once, as the broker drops a request once handled: a round
        // that kept 200 000 envelopes would time the kernel's page faults for their fresh memory instead.
        var payloadBytes = 0
        var envelopeBytes = 0
        var parseBest = Duration.seconds(1_000_000)
        var sealBest = Duration.seconds(1_000_000)
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            for frame in frames { payloadBytes &+= try Self.publishedFields(frame).payload?.bytes.count ?? 0 }
            let middle = ContinuousClock.now
            for (offset, fields) in parsed.enumerated() {
                var stored = fields
                stored.metadata["producer"] = "bench"
                stored.applyDefaults()
                stored.offset = Int64(offset)
                stored.partition = 0
                envelopeBytes &+= EventEnvelope(sealing: stored).json.count
            }
            let end = ContinuousClock.now
            parseBest = min(parseBest, middle - start)
            sealBest = min(sealBest, end - middle)
        }
        guard payloadBytes == rounds * events * payloadSize else {
            throw BenchError("the parsed payloads are not the payloads sent")
        }
        let envelopeSize = envelopeBytes / (rounds * events)
        let parseNanoseconds = nanoseconds(parseBest) / Double(events)
        let sealNanoseconds = nanoseconds(sealBest) / Double(events)
        if json {
            print(
                #"{"events":\#(events),"rounds":\#(rounds),"payload_size":\#(payloadSize),"#
                    + #""parse_ns":\#(rounded(parseNanoseconds)),"seal_ns":\#(rounded(sealNanoseconds)),"envelope_bytes":\#(envelopeSize)}"#
            )
        } else {
            print("publish path in process: \(events) frames of \(payloadSize)-byte payload, best of \(rounds) rounds")
            print("  parse the frame: \(rounded(parseNanoseconds)) ns per event")
            print(
                "  seal and encode the envelope: \(rounded(sealNanoseconds)) ns per event (envelopes of \(envelopeSize) bytes on average)"
            )
        }
    }

    private static func publishedFields(_ frame: [UInt8]) throws -> EnvelopeFields {
        guard case .success(let request) = ClientRequest.parse(frame), case .publish(let fields) = request.operation
        else { throw BenchError("a benchmark frame did not parse as a publish") }
        return fields
    }

    private func nanoseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
    }

    private func rounded(_ value: Double) -> String { String(format: "%.1f", value) }
}
