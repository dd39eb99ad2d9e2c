import ArgumentParser
import Dispatch
import Foundation
import HeraldProtocol
import Histogram
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `herald bench durable`: confirmed publishes with a window of requests in flight, each answered once the
/// event is durable; then a consumer group reading them back with acknowledgements; with `--spawn`, the
/// log's bytes per event and the time a restart takes to recover it (docs/benchmarks.md).
struct BenchDurable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "durable",
        abstract: "Measure confirmed publishes to the durable log, group delivery with acks, and recovery.",
        discussion: """
            The publisher keeps --in-flight publishes with an id outstanding; the latency of each is from its \
            write to its ok (sent once the event is durable under the broker's fsync policy). Then one group \
            member reads every event from the log and acknowledges it. With --spawn the run also reports the \
            log's size per event and, with --restart, the time from starting the broker again to its ready \
            line (log recovery included).
            """
    )

    @Option(help: "Events to publish.")
    var events = 1_000_000

    @Option(name: .customLong("payload-size"), help: "Bytes of each event's payload (at least 16).")
    var payloadSize = 256

    @Option(name: .customLong("in-flight"), help: "Confirmed publishes outstanding at once.")
    var inFlight = 256

    @Option(help: "Distinct keys (the events spread over partitions by key).")
    var keys = 64

    @Option(
        name: .customLong("group-in-flight"),
        help: "The group member's max_in_flight (1 to 100000): how many deliveries wait for an ack at once.")
    var groupInFlight = 10_000

    @Flag(name: .customLong("no-consume"), help: "Skip the group delivery phase.")
    var noConsume = false

    @Flag(help: "Start a broker for the run (in a temporary directory) instead of using --socket.")
    var spawn = false

    @Option(help: "The spawned broker's fsync policy: always, batch or never.")
    var fsync = "batch"

    @Flag(help: "With --spawn: stop the broker after the run, start it again and time its recovery.")
    var restart = false

    @Option(help: "The socket of a running broker.")
    var socket = "./herald-data/herald.sock"

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard events >= 1 else { throw ValidationError("--events must be at least 1") }
        guard payloadSize >= 16 else { throw ValidationError("--payload-size must be at least 16") }
        guard (1...100_000).contains(groupInFlight) else {
            throw ValidationError("--group-in-flight must be from 1 to 100000")
        }
        guard (1...100_000).contains(inFlight) else { throw ValidationError("--in-flight must be from 1 to 100000") }
        guard keys >= 1 else { throw ValidationError("--keys must be at least 1") }
        guard ["always", "batch", "never"].contains(fsync) else {
            throw ValidationError("--fsync must be always, batch or never")
        }
        if restart && !spawn { throw ValidationError("--restart needs --spawn") }
    }

    func run() async throws {
        do {
            var spawned =
                spawn
                ? try SpawnedBroker.start(
                    directory: NSTemporaryDirectory() + "herald-bench-durable-\(getpid())",
                    configuration: "[log]\nfsync = \"\(fsync)\"\n") : nil
            defer { spawned?.stop() }
            let path = spawned?.socket ?? socket
            var result = try await measure(socket: path)
            if let broker = spawned {
                // The segments and their indexes; the journal is a file of fixed size, not a cost per event.
                let journal = broker.directory + "/log/journal"
                let journalBytes =
                    (try? FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int).flatMap { $0 } ?? 0
                result.logBytes = SpawnedBroker.size(of: broker.directory + "/log") - journalBytes
                result.journalBytes = journalBytes
                if restart {
                    broker.stop(keepingDirectory: true)
                    let started = monotonicNanoseconds()
                    spawned = try SpawnedBroker.start(directory: broker.directory, configuration: nil)
                    result.restartSeconds = Double(monotonicNanoseconds() - started) / 1e9
                }
            }
            printLine(json ? result.json : result.text)
        } catch {
            throw fail("bench: \(error)")
        }
    }

    private func measure(socket path: String) async throws -> DurableResult {
        let publisher = try BenchSocket(path: path)
        _ = try publisher.request(
            #"{"op":"hello","id":0,"protocol":1,"module":{"name":"bench-durable","version":"1"}}"#)
        let runID = "\(getpid())-\(monotonicNanoseconds())"
        let group = "bench-\(runID.replacingOccurrences(of: "-", with: "_"))"
        // The group exists before the first publish, so it reads exactly this run's events.
        let consumer = noConsume ? nil : try BenchSocket(path: path)
        if let consumer {
            _ = try consumer.request(
                #"{"op":"hello","id":0,"protocol":1,"module":{"name":"bench-group","version":"1"}}"#)
            let ok = try consumer.request(
                #"{"op":"subscribe","id":1,"topics":["bench.durable"],"group":"\#(group)","max_in_flight":\#(groupInFlight)}"#
            )
            guard ok.hasPrefix(#"{"op":"ok""#) else { throw BenchError("subscribe: \(ok)") }
        }
        let (events, inFlight, keys, payloadSize) = (self.events, self.inFlight, self.keys, self.payloadSize)
        let window = DispatchSemaphore(value: inFlight)
        let sentAt = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: events + 1)
        defer { sentAt.deallocate() }
        let sentAtAddress = UInt(bitPattern: sentAt.baseAddress)
        let start = monotonicNanoseconds()
        async let written: Void = onThread("bench-durable-writer") {
            try Self.publish(
                events, keys: keys, payloadSize: payloadSize, runID: runID, on: publisher, window: window,
                sentAt: UnsafeMutablePointer<UInt64>(bitPattern: sentAtAddress)!)
        }
        let histogram = try await onThread("bench-durable-reader") {
            try Self.collectConfirmations(
                events, on: publisher, window: window, sentAt: UnsafeMutablePointer<UInt64>(bitPattern: sentAtAddress)!)
        }
        try await written
        let published = Double(monotonicNanoseconds() - start) / 1e9
        var consumed: Double?
        var groupAckLatency: Histogram<UInt64>?
        if let consumer {
            let consumeStart = monotonicNanoseconds()
            groupAckLatency = try await onThread("bench-durable-consumer") { try Self.consume(events, on: consumer) }
            consumed = Double(monotonicNanoseconds() - consumeStart) / 1e9
        }
        return DurableResult(
            events: events, payloadSize: payloadSize, inFlight: inFlight, publishSeconds: published, latency: histogram,
            consumeSeconds: consumed, groupInFlight: groupInFlight, groupAckLatency: groupAckLatency)
    }

    /// Writes the publishes, each with its number as `id`, as many per write as the window allows.
    private static func publish(
        _ events: Int, keys: Int, payloadSize: Int, runID: String, on connection: BenchSocket,
        window: DispatchSemaphore, sentAt: UnsafeMutablePointer<UInt64>
    ) throws {
        let payload = "\"" + String(repeating: "x", count: payloadSize - 2) + "\""
        var batch: [UInt8] = []
        var next = 1
        while next <= events {
            window.wait()
            var count = 1
            while count < 64, next + count <= events, window.wait(timeout: .now()) == .success { count += 1 }
            batch.removeAll(keepingCapacity: true)
            let now = monotonicNanoseconds()
            for id in next..<(next + count) {
                let json =
                    #"{"op":"publish","id":\#(id),"event":{"event_type":"bench.durable","key":"k\#(id % keys)","event_id":"\#(runID)-\#(id)","payload":\#(payload)}}"#
                batch.append(contentsOf: FrameLength.prefix(json.utf8.count))
                batch.append(contentsOf: json.utf8)
                sentAt[id] = now
            }
            try connection.write(batch)
            next += count
        }
    }

    /// Reads the `ok`s, freeing a place in the window for each and recording its latency.
    private static func collectConfirmations(
        _ events: Int, on connection: BenchSocket, window: DispatchSemaphore, sentAt: UnsafeMutablePointer<UInt64>
    ) throws -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        var confirmed = 0
        let okPrefix = Array(#"{"op":"ok","id":"#.utf8)
        var failure: String?
        try connection.readFrames { frame in
            guard frame.count > okPrefix.count, frame.starts(with: okPrefix) else {
                failure = String(decoding: frame, as: UTF8.self)
                return false
            }
            let id = Int(Self.number(after: okPrefix, in: frame, at: 0))
            _ = histogram.record(monotonicNanoseconds() - sentAt[id])
            confirmed += 1
            window.signal()
            return confirmed < events
        }
        if let failure { throw BenchError("a publish was not confirmed: \(failure)") }
        return histogram
    }

    /// Reads the group's deliveries and acknowledges them 256 at a time, until every event came. Each ack
    /// has an id; the latency from its write to its `ok` (sent once the group's state file holds it) is
    /// returned.
    private static func consume(_ events: Int, on connection: BenchSocket) throws -> Histogram<UInt64> {
        let seqMarker = Array(#""seq":"#.utf8)
        let okPrefix = Array(#"{"op":"ok","id":"#.utf8)
        var received = 0
        var subscription: UInt64 = 0
        var acks: [UInt64] = []
        var ackSentAt: [UInt64] = []
        var latency = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        func acknowledge() throws {
            guard !acks.isEmpty else { return }
            var body = Array(#"{"op":"ack","id":\#(ackSentAt.count),"subscription":\#(subscription),"seq":["#.utf8)
            for (index, seq) in acks.enumerated() {
                if index > 0 { body.append(UInt8(ascii: ",")) }
                body.append(contentsOf: String(seq).utf8)
            }
            body.append(contentsOf: "]}".utf8)
            ackSentAt.append(monotonicNanoseconds())
            try connection.write(FrameLength.prefix(body.count) + body)
            acks.removeAll(keepingCapacity: true)
        }
        try connection.readFrames { frame in
            if frame.count > okPrefix.count, frame.starts(with: okPrefix) {
                let id = Int(Self.number(after: okPrefix, in: frame, at: 0))
                if id < ackSentAt.count { latency.record(monotonicNanoseconds() - ackSentAt[id]) }
                return true
            }
            guard let marker = Self.find(seqMarker, in: frame) else { return true }
            if subscription == 0 { subscription = Self.number(after: Array(#""subscription":"#.utf8), in: frame) }
            acks.append(Self.number(after: seqMarker, in: frame, at: marker))
            received += 1
            if acks.count >= 256 { try acknowledge() }
            return received < events
        }
        try acknowledge()
        return latency
    }

    /// The decimal number right after `marker` (found at `at`, else searched for) in `frame`.
    private static func number(after marker: [UInt8], in frame: UnsafeRawBufferPointer, at: Int? = nil) -> UInt64 {
        guard let found = at ?? find(marker, in: frame) else { return 0 }
        var value: UInt64 = 0
        var index = found + marker.count
        while index < frame.count, frame[index] >= 48, frame[index] <= 57 {
            value = value * 10 + UInt64(frame[index] - 48)
            index += 1
        }
        return value
    }

    private static func find(_ marker: [UInt8], in frame: UnsafeRawBufferPointer) -> Int? {
        guard frame.count >= marker.count else { return nil }
        var index = 0
        while index <= frame.count - marker.count {
            if frame[index] == marker[0] && frame[index..<(index + marker.count)].elementsEqual(marker) { return index }
            index += 1
        }
        return nil
    }
}

/// What one durable run measured.
struct DurableResult {
    var events: Int
    var payloadSize: Int
    var inFlight: Int
    var publishSeconds: Double
    var latency: Histogram<UInt64>
    var consumeSeconds: Double?
    var groupInFlight = 0
    /// From an ack's write to its `ok`, in the group phase.
    var groupAckLatency: Histogram<UInt64>?
    var logBytes: Int?
    /// The journal's size (fixed, whatever the events).
    var journalBytes = 0
    var restartSeconds: Double?

    private func milliseconds(_ percentile: Double, of histogram: Histogram<UInt64>? = nil) -> Double {
        Double((histogram ?? latency).valueAtPercentile(percentile)) / 1e6
    }

    var text: String {
        var lines = [
            "durable: \(events) confirmed publishes of \(payloadSize)-byte payload, \(inFlight) in flight",
            String(
                format: "  %.3f s: %.0f events/s; ack latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
                publishSeconds, Double(events) / publishSeconds, milliseconds(50), milliseconds(99), milliseconds(99.9),
                Double(latency.max) / 1e6),
        ]
        if let consumeSeconds {
            lines.append(
                String(
                    format: "  group delivery with acks (max_in_flight %ld): %.3f s, %.0f events/s", groupInFlight,
                    consumeSeconds, Double(events) / consumeSeconds))
        }
        if let groupAckLatency, groupAckLatency.totalCount > 0 {
            lines.append(
                String(
                    format: "  group ack latency (256 seqs per ack): p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                    milliseconds(50, of: groupAckLatency), milliseconds(99, of: groupAckLatency),
                    Double(groupAckLatency.max) / 1e6))
        }
        if let logBytes {
            lines.append(
                String(
                    format: "  log on disk: %ld bytes, %.1f bytes per event (and the journal: %ld bytes)", logBytes,
                    Double(logBytes) / Double(events), journalBytes))
        }
        if let restartSeconds {
            lines.append(String(format: "  restart to ready (recovery included): %.3f s", restartSeconds))
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var fields = [
            #""mode":"durable""#, #""events":\#(events)"#, #""payload_size":\#(payloadSize)"#,
            #""in_flight":\#(inFlight)"#, String(format: #""publish_seconds":%.6f"#, publishSeconds),
            String(format: #""events_per_second":%.0f"#, Double(events) / publishSeconds),
            String(
                format: #""ack_latency_ms":{"p50":%.3f,"p99":%.3f,"p999":%.3f,"max":%.3f}"#, milliseconds(50),
                milliseconds(99), milliseconds(99.9), Double(latency.max) / 1e6),
        ]
        if let consumeSeconds {
            fields.append(String(format: #""consume_events_per_second":%.0f"#, Double(events) / consumeSeconds))
            fields.append(#""group_in_flight":\#(groupInFlight)"#)
        }
        if let groupAckLatency, groupAckLatency.totalCount > 0 {
            fields.append(
                String(
                    format: #""group_ack_latency_ms":{"p50":%.3f,"p99":%.3f,"max":%.3f}"#,
                    milliseconds(50, of: groupAckLatency), milliseconds(99, of: groupAckLatency),
                    Double(groupAckLatency.max) / 1e6))
        }
        if let logBytes {
            fields.append(#""log_bytes":\#(logBytes)"#)
            fields.append(String(format: #""bytes_per_event":%.1f"#, Double(logBytes) / Double(events)))
            fields.append(#""journal_bytes":\#(journalBytes)"#)
        }
        if let restartSeconds { fields.append(String(format: #""restart_seconds":%.3f"#, restartSeconds)) }
        return "{" + fields.joined(separator: ",") + "}"
    }
}
