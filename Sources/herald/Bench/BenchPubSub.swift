import ArgumentParser
import Foundation
import HeraldProtocol
import Histogram

#if canImport(Glibc)
    import Glibc
#endif

/// `herald bench`: benchmarks against a running broker (or one it spawns).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark a broker.",
        subcommands: [
            BenchPubSub.self, BenchDurable.self, BenchWebSocket.self, BenchHTTP.self, BenchParse.self,
            BenchGroupCommit.self,
        ]
    )
}

/// `herald bench pubsub`: one publisher and N subscribers over the broker's socket, end to end — the clock
/// stops when every subscriber has every event (docs/benchmarks.md).
struct BenchPubSub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubsub",
        abstract: "Measure live publish → deliver throughput, or latency at a fixed rate.",
        discussion: """
            Subscribers use drop_oldest with a large queue, so the last event always arrives and ends the run; \
            anything dropped on the way is reported. In latency mode every event carries its send time and \
            each delivery's delay goes into an HDR histogram.
            """
    )

    @Option(help: "Subscriber connections that read everything.")
    var subscribers = 1

    @Option(help: "Events to publish.")
    var events = 1_000_000

    @Option(name: .customLong("payload-size"), help: "Bytes of each event's payload (at least 40).")
    var payloadSize = 256

    @Flag(help: "Measure publish → deliver latency at --rate instead of throughput.")
    var latency = false

    @Option(help: "Events per second in latency mode.")
    var rate = 10_000

    @Option(help: "Extra subscribers that never read.")
    var stalled = 0

    @Option(help: "Each reading subscriber's queue in the broker, in events.")
    var buffer = 100_000

    @Flag(help: "Start a broker for the run (in a temporary directory) instead of using --socket.")
    var spawn = false

    @Option(help: "The socket of a running broker.")
    var socket = "./herald-data/herald.sock"

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard subscribers >= 1 else { throw ValidationError("--subscribers must be at least 1") }
        guard events >= 1 else { throw ValidationError("--events must be at least 1") }
        guard payloadSize >= 40 else { throw ValidationError("--payload-size must be at least 40") }
        guard rate >= 1 else { throw ValidationError("--rate must be at least 1") }
        guard (1...100_000).contains(buffer) else { throw ValidationError("--buffer must be from 1 to 100000") }
        guard (0...10_000).contains(stalled) else { throw ValidationError("--stalled must be from 0 to 10000") }
    }

    func run() async throws {
        let spawned = spawn ? try SpawnedBroker.start() : nil
        defer { spawned?.stop() }
        let path = spawned?.socket ?? socket
        do {
            let result = try await measure(socket: path)
            printLine(json ? result.json : result.text)
        } catch {
            throw fail("bench: \(error)")
        }
    }

    private func measure(socket path: String) async throws -> BenchResult {
        // Stalled subscribers: subscribed with the default queue, never read again.
        var stalledConnections: [BenchSocket] = []
        for index in 0..<stalled {
            let connection = try BenchSocket(path: path)
            _ = try connection.request(Self.hello("bench-stalled-\(index)"))
            _ = try connection.request(#"{"op":"subscribe","id":2,"topics":["bench"]}"#)
            stalledConnections.append(connection)
        }
        defer { withExtendedLifetime(stalledConnections) {} }
        var readers: [BenchSocket] = []
        for index in 0..<subscribers {
            let connection = try BenchSocket(path: path)
            _ = try connection.request(Self.hello("bench-sub-\(index)"))
            let ok = try connection.request(
                #"{"op":"subscribe","id":2,"topics":["bench"],"buffer":\#(buffer),"overflow":"drop_oldest"}"#)
            guard ok.hasPrefix(#"{"op":"ok""#) else { throw BenchError("subscribe: \(ok)") }
            readers.append(connection)
        }
        let publisher = try BenchSocket(path: path)
        _ = try publisher.request(Self.hello("bench-pub"))

        let events = self.events
        let latency = self.latency
        let start = monotonicNanoseconds()
        let subscribersSockets = readers
        async let published = onThread("bench-publisher") { [self] in
            // The subscribers wait for every event: when some were refused, or the broker closed the
            // publisher's connection (a frame over its max_frame, say), they would wait for ever.
            do {
                try self.publish(on: publisher)
                let publishedAt = monotonicNanoseconds()
                // Every publish went without `id`: the broker answers only refusals. A ping answered after all
                // of them tells whether there were any.
                var refusals = 0
                _ = try publisher.request(#"{"op":"ping","id":"end"}"#) { reply in
                    if reply.hasPrefix(#"{"op":"error""#) { refusals += 1 }
                }
                if refusals > 0 { for socket in subscribersSockets { socket.interrupt() } }
                return (publishedAt, refusals)
            } catch {
                for socket in subscribersSockets { socket.interrupt() }
                throw error
            }
        }
        let outcomes: [SubscriberOutcome]
        var subscriberError: (any Error)?
        do {
            outcomes = try await withThrowingTaskGroup(of: SubscriberOutcome.self) { group in
                for (index, reader) in readers.enumerated() {
                    group.addTask {
                        try await onThread("bench-subscriber-\(index)") {
                            try Self.receive(on: reader, until: UInt64(events), latency: latency)
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        } catch {
            outcomes = []
            subscriberError = error
        }
        let (publishedAt, refusals) = try await published
        guard refusals == 0 else { throw BenchError("the broker refused \(refusals) of the published events") }
        if let subscriberError { throw subscriberError }
        let end = outcomes.map(\.finishedAt).max() ?? start
        var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        for outcome in outcomes { if let latencies = outcome.latencies { histogram.add(latencies) } }
        return BenchResult(
            mode: latency ? "latency" : "throughput",
            subscribers: subscribers,
            stalled: stalled,
            events: events,
            payloadSize: payloadSize,
            rate: latency ? rate : nil,
            seconds: Double(end - start) / 1e9,
            publishSeconds: Double(publishedAt - start) / 1e9,
            delivered: outcomes.reduce(0) { $0 + $1.received },
            latency: latency ? histogram : nil
        )
    }

    private static func hello(_ module: String) -> String {
        #"{"op":"hello","id":1,"protocol":1,"module":{"name":"\#(module)","version":"1"}}"#
    }

    // MARK: Publishing

    /// One publish frame, with the offsets of the digits patched for each event: the event id's counter and
    /// the send time in the payload. `herald bench parse` parses the same frames.
    struct Template {
        var frame: [UInt8]
        var idDigits: Range<Int>
        var timeDigits: Range<Int>
        /// Where the JSON text starts, after the frame's length prefix.
        var textStart: Int

        init(payloadSize: Int) {
            // The send time as a fixed-width string: a JSON number may not have leading zeros.
            let head = #"{"t":"00000000000000000000","p":""#
            let payload = head + String(repeating: "x", count: payloadSize - head.utf8.count - 2) + #""}"#
            // Each run's ids carry a tag of their own: a second run against the same broker within its dedup
            // window must not have its events dropped as duplicates of the first's (and never finish).
            let run = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let placeholder = "e-\(run)-000000000000"
            let json =
                #"{"op":"publish","event":{"event_type":"bench","event_id":""# + placeholder
                + #"","timestamp":"2026-11-23T00:00:00.000Z","payload":"# + payload + "}}"
            let prefix = FrameLength.prefix(json.utf8.count)
            frame = prefix + Array(json.utf8)
            textStart = prefix.count
            // Offsets are found in the JSON text, then moved past the length prefix (which is binary, not text).
            let id = json.range(of: placeholder)!
            let idStart = prefix.count + json.utf8.distance(from: json.startIndex, to: id.upperBound) - 12
            idDigits = idStart..<(idStart + 12)
            let time = json.range(of: #"{"t":""#)!
            let timeStart = prefix.count + json.utf8.distance(from: json.startIndex, to: time.upperBound)
            timeDigits = timeStart..<(timeStart + 20)
        }
    }

    private func publish(on connection: BenchSocket) throws {
        let template = Template(payloadSize: payloadSize)
        let frameLength = template.frame.count
        if latency {
            var frame = template.frame
            let interval = 1_000_000_000 / UInt64(rate)
            let begin = monotonicNanoseconds()
            for index in 0..<events {
                let due = begin + UInt64(index) * interval
                Self.waitUntil(due)
                Self.writeDigits(UInt64(index), into: &frame, at: template.idDigits)
                Self.writeDigits(monotonicNanoseconds(), into: &frame, at: template.timeDigits)
                try connection.write(frame)
            }
            return
        }
        // Throughput: a chunk of frames built once, only the ids patched, written in one call.
        let perChunk = max(1, (256 << 10) / frameLength)
        var chunk: [UInt8] = []
        for _ in 0..<perChunk { chunk.append(contentsOf: template.frame) }
        var sent = 0
        while sent < events {
            let count = min(perChunk, events - sent)
            for index in 0..<count {
                let offset = index * frameLength
                Self.writeDigits(
                    UInt64(sent + index),
                    into: &chunk,
                    at: (template.idDigits.lowerBound + offset)..<(template.idDigits.upperBound + offset)
                )
            }
            try chunk.withUnsafeBytes {
                try connection.write(UnsafeRawBufferPointer(rebasing: $0[0..<(count * frameLength)]))
            }
            sent += count
        }
    }

    /// Sleeps until shortly before `due`, then spins for the last few microseconds. The thread's timer slack
    /// is set to 1 ns first (by default the kernel may wake a sleeper 50 µs late): a publisher that spun
    /// through each 100 µs interval instead would keep one of this machine's two cores busy and take it
    /// from the broker and the subscribers it measures.
    private static func waitUntil(_ due: UInt64) {
        if !timerSlackSet {
            setTimerSlack(nanoseconds: 1)
            timerSlackSet = true
        }
        while true {
            let now = monotonicNanoseconds()
            if now >= due { return }
            if due - now > 30_000 {
                var request = timespec(tv_sec: 0, tv_nsec: Int(due - now - 15_000))
                nanosleep(&request, nil)
            }
        }
    }

    /// Set on the publisher's thread, the only one that waits.
    nonisolated(unsafe) private static var timerSlackSet = false

    /// `prctl(PR_SET_TIMERSLACK, …)` for the calling thread. `prctl` is variadic, which Swift cannot call, so
    /// it is looked up and called with its integer arguments; without it the waits are merely less exact.
    private static func setTimerSlack(nanoseconds: UInt) {
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else { return }
        let prSetTimerSlack: Int32 = 29
        _ = unsafeBitCast(symbol, to: Prctl.self)(prSetTimerSlack, nanoseconds, 0, 0, 0)
    }

    static func writeDigits(_ value: UInt64, into bytes: inout [UInt8], at range: Range<Int>) {
        var value = value
        for index in range.reversed() {
            bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
            value /= 10
        }
    }

    // MARK: Receiving

    struct SubscriberOutcome: Sendable {
        var received: Int
        var finishedAt: UInt64
        var latencies: Histogram<UInt64>?
    }

    /// Reads until the event with `seq` equal to `last` (under drop_oldest the newest event always arrives),
    /// answering pings, counting events and, in latency mode, recording each event's delay in nanoseconds.
    private static func receive(on connection: BenchSocket, until last: UInt64, latency: Bool) throws
        -> SubscriberOutcome
    {
        let eventPrefix = Array(#"{"op":"event","subscription":"#.utf8)
        let timeMarker = Array(#"{"t":""#.utf8)
        var received = 0
        var histogram = Histogram<UInt64>(numberOfSignificantValueDigits: .three)
        try connection.readFrames { frame in
            guard frame.count > eventPrefix.count, frame.starts(with: eventPrefix) else {
                if frame.elementsEqual(#"{"op":"ping"}"#.utf8) {
                    let pong = #"{"op":"pong"}"#
                    try connection.write(FrameLength.prefix(pong.utf8.count) + Array(pong.utf8))
                }
                return true
            }
            // `{"op":"event","subscription":N,"seq":S,…`: skip N and `,"seq":`.
            var index = eventPrefix.count
            while frame[index] != UInt8(ascii: ",") { index += 1 }
            index += 7
            var seq: UInt64 = 0
            while frame[index] >= UInt8(ascii: "0") && frame[index] <= UInt8(ascii: "9") {
                seq = seq * 10 + UInt64(frame[index] - UInt8(ascii: "0"))
                index += 1
            }
            received += 1
            if latency, let at = Self.find(timeMarker, in: frame, from: index) {
                var sent: UInt64 = 0
                for offset in 0..<20 { sent = sent * 10 + UInt64(frame[at + offset] - UInt8(ascii: "0")) }
                let now = monotonicNanoseconds()
                _ = histogram.record(now > sent ? now - sent : 0)
            }
            return seq < last
        }
        return SubscriberOutcome(
            received: received,
            finishedAt: monotonicNanoseconds(),
            latencies: latency ? histogram : nil
        )
    }

    /// The index just after `marker` in `frame`, searching from `start`.
    private static func find(_ marker: [UInt8], in frame: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        while index + marker.count <= frame.count {
            if frame[index] == marker[0] && frame[index..<(index + marker.count)].elementsEqual(marker) {
                return index + marker.count
            }
            index += 1
        }
        return nil
    }
}

/// What one run measured.
struct BenchResult {
    var mode: String
    var subscribers: Int
    var stalled: Int
    var events: Int
    var payloadSize: Int
    var rate: Int?
    var seconds: Double
    var publishSeconds: Double
    var delivered: Int
    var latency: Histogram<UInt64>?

    var eventsPerSecond: Double { Double(events) / seconds }
    var deliveriesPerSecond: Double { Double(delivered) / seconds }
    var dropped: Int { events * subscribers - delivered }

    private func microseconds(_ percentile: Double) -> Double {
        Double(latency?.valueAtPercentile(percentile) ?? 0) / 1000
    }

    var text: String {
        var lines = [
            "pubsub \(mode): 1 publisher → \(subscribers) subscribers (+\(stalled) stalled), \(events) events of \(payloadSize)-byte payload"
        ]
        lines.append(
            String(
                format: "  %.3f s end to end: %.0f events/s, %.0f deliveries/s; publisher done after %.3f s",
                seconds, eventsPerSecond, deliveriesPerSecond, publishSeconds))
        lines.append("  delivered \(delivered), dropped \(dropped)")
        if let latency, let rate {
            lines.append(
                String(
                    format: "  latency at %ld events/s: p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs, max %.1f µs",
                    rate, microseconds(50), microseconds(99), microseconds(99.9), Double(latency.max) / 1000))
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var fields = [
            #""mode":"\#(mode)""#, #""subscribers":\#(subscribers)"#, #""stalled":\#(stalled)"#,
            #""events":\#(events)"#, #""payload_size":\#(payloadSize)"#,
            String(format: #""seconds":%.6f"#, seconds),
            String(format: #""events_per_second":%.0f"#, eventsPerSecond),
            String(format: #""deliveries_per_second":%.0f"#, deliveriesPerSecond),
            String(format: #""publish_seconds":%.6f"#, publishSeconds),
            #""delivered":\#(delivered)"#, #""dropped":\#(dropped)"#,
        ]
        if let latency, let rate {
            fields.append(#""rate":\#(rate)"#)
            fields.append(
                String(
                    format: #""latency_us":{"p50":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f}"#,
                    microseconds(50), microseconds(99), microseconds(99.9), Double(latency.max) / 1000))
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

/// A broker started for one benchmark run, in a temporary directory, stopped with SIGTERM afterwards.
struct SpawnedBroker {
    let process: Process
    let directory: String
    let socket: String
    /// The HTTP gateway's `host:port`.
    let http: String

    static func start() throws -> SpawnedBroker {
        try start(directory: NSTemporaryDirectory() + "herald-bench-\(getpid())", configuration: nil)
    }

    /// Starts `herald serve` on `directory` (its socket inside it), with `configuration` written to
    /// `herald.toml` there when given, and waits for its ready line. It runs in `directory`, so that the
    /// `herald.toml` and `modules` of the directory the benchmark was started from (a deployment's, say)
    /// are not picked up: the figures are those of the defaults, or of `configuration`.
    static func start(directory: String, configuration: String?) throws -> SpawnedBroker {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let socket = directory + "/herald.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.arguments = ["serve", "--data-dir", directory, "--socket", socket, "--http", "127.0.0.1:0"]
        let file = directory + "/herald.toml"
        if let configuration { try configuration.write(toFile: file, atomically: true, encoding: .utf8) }
        if FileManager.default.fileExists(atPath: file) { process.arguments! += ["--config", file] }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        var line: [UInt8] = []
        while true {
            guard let byte = output.fileHandleForReading.readData(ofLength: 1).first else {
                throw BenchError("the spawned broker exited before it was ready")
            }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        let ready = String(decoding: line, as: UTF8.self)
        guard ready.hasPrefix("herald ready "), let http = ready.split(separator: " ").last, http.hasPrefix("http=")
        else {
            throw BenchError("the spawned broker said: \(ready)")
        }
        return SpawnedBroker(process: process, directory: directory, socket: socket, http: String(http.dropFirst(5)))
    }

    /// The bytes of the files under `path`.
    static func size(of path: String) -> Int {
        guard let files = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        for case let file as String in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + file)
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += attributes?[.size] as? Int ?? 0 }
        }
        return total
    }

    func stop(keepingDirectory: Bool = false) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitForExit()
        if !keepingDirectory { try? FileManager.default.removeItem(atPath: directory) }
    }
}
