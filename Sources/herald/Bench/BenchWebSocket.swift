import ArgumentParser
import Foundation
import HeraldProtocol
import HeraldServer
import Histogram
import Synchronization

/// `herald bench ws`: many WebSocket clients subscribed to `block.new.*` while events are published at a
/// fixed rate over the IPC socket: publish → receive latency, and the broker's resident memory per idle
/// connection (docs/benchmarks.md).
struct BenchWebSocket: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws",
        abstract: "Measure WebSocket fan-out: latency to many clients and memory per connection.",
        discussion: """
            Opens --connections WebSocket clients on /v1/ws?topics=block.new.*, measures the broker's resident \
            memory before and after (idle), then publishes --rate events per second for --seconds over the IPC \
            socket, a --matching fraction of them block.new.<chain> (the rest tx.confirmed), each carrying its \
            send time. Every client records the delay of each event it receives.
            """
    )

    @Option(help: "WebSocket clients.")
    var connections = 1000

    @Option(help: "Events per second published.")
    var rate = 1000

    @Option(help: "The fraction of events that match the clients' block.new.* (0 to 1).")
    var matching = 1.0

    @Option(help: "Seconds of publishing.")
    var seconds = 10

    @Flag(help: "Start a broker for the run (in a temporary directory) instead of using --socket and --http.")
    var spawn = false

    @Option(help: "The socket of a running broker.")
    var socket = "./herald-data/herald.sock"

    @Option(help: "The HTTP listener of a running broker.")
    var http = "127.0.0.1:7480"

    @Option(help: "Threads reading the clients' connections (each holds a share of them in an epoll set).")
    var readerThreads = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        guard (1...10_000_000).contains(rate) else { throw ValidationError("--rate must be from 1 to 10000000") }
        guard (1...86_400).contains(seconds) else { throw ValidationError("--seconds must be from 1 to 86400") }
        guard (0...1).contains(matching) else { throw ValidationError("--matching must be from 0 to 1") }
        guard readerThreads >= 1 else { throw ValidationError("--reader-threads must be at least 1") }
    }

    /// Shared by the run's threads.
    final class Run: Sendable {
        /// Set when the run is over: the readers leave.
        let stop = Atomic<Bool>(false)
    }

    func run() async throws {
        let spawned = spawn ? try SpawnedBroker.start() : nil
        defer { spawned?.stop() }
        let socketPath = spawned?.socket ?? socket
        let (host, port) = try hostAndPort(spawned?.http ?? http)
        let pid = spawned.map { $0.process.processIdentifier }
        let before = pid.map(Self.residentKiB) ?? 0
        // One descriptor per client: the soft limit of 1 024 that many systems start with is too few.
        OpenFileLimit.raiseToHardLimit()
        let readers = try (0..<min(readerThreads, connections)).map { _ in try BenchWebSocketReader() }
        // Each reader thread opens its share of the connections, one after the other.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, reader) in readers.enumerated() {
                let share = connections / readers.count + (index < connections % readers.count ? 1 : 0)
                group.addTask {
                    try await onThread("herald-bench-connect") {
                        for _ in 0..<share {
                            try reader.connect(host: host, port: port, path: "/v1/ws?topics=block.new.*")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await Task.sleep(for: .seconds(1))
        let idle = pid.map(Self.residentKiB) ?? 0
        let run = Run()
        let published = try await withThrowingTaskGroup(of: (total: Int, matching: Int)?.self) { group in
            for reader in readers {
                group.addTask {
                    try await onThread("herald-bench-reader") { try reader.run(until: run) }
                    return nil
                }
            }
            let published = try await onThread("herald-bench-publisher") {
                try Self.publish(socket: socketPath, rate: rate, seconds: seconds, matching: matching)
            }
            // Let the last events arrive (a run where everything arrived leaves at once; the deadline only ends
            // one where some never will).
            let expected = published.matching * connections
            let deadline = ContinuousClock.now + .seconds(30)
            while readers.reduce(0, { $0 + $1.received.load(ordering: .relaxed) }) < expected
                && ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            run.stop.store(true, ordering: .relaxed)
            try await group.waitForAll()
            return published
        }
        var latency = readers[0].histogram
        for reader in readers.dropFirst() { latency.add(reader.histogram) }
        var result = Outcome(
            connections: connections, rate: rate, matching: matching, seconds: seconds,
            published: published.total, expected: published.matching * connections,
            received: readers.reduce(0) { $0 + $1.received.load(ordering: .relaxed) },
            idleKiBPerConnection: pid == nil ? nil : Double(idle - before) / Double(connections),
            latency: latency)
        result.report(json: json)
    }

    /// Publishes for `seconds` at `rate` over the socket; returns how many events, and how many matched.
    private static func publish(socket: String, rate: Int, seconds: Int, matching: Double) throws -> (
        total: Int, matching: Int
    ) {
        let connection = try BenchSocket(path: socket)
        _ = try connection.request(#"{"op":"hello","id":1,"protocol":1,"module":{"name":"bench-ws","version":"1"}}"#)
        let total = rate * seconds
        let interval = 1_000_000_000 / UInt64(rate)
        let begin = monotonicNanoseconds()
        var matched = 0
        for index in 0..<total {
            let due = begin + UInt64(index) * interval
            while monotonicNanoseconds() < due {
                var request = timespec(tv_sec: 0, tv_nsec: 50_000)
                nanosleep(&request, nil)
            }
            // Spread evenly: event i matches when the running share of matches falls behind `matching`.
            let matches = Double(matched) < Double(index + 1) * matching
            if matches { matched += 1 }
            let type =
                matches ? #""event_type":"block.new","chain_id":\#(index % 3 + 1)"# : #""event_type":"tx.confirmed""#
            let time = String(monotonicNanoseconds())
            let padded = String(repeating: "0", count: 20 - time.count) + time
            let json = #"{"op":"publish","event":{\#(type),"payload":{"t":"\#(padded)","n":\#(index)}}}"#
            try connection.write(FrameLength.prefix(json.utf8.count) + Array(json.utf8))
        }
        return (total, matched)
    }

    /// The resident memory of process `pid` in KiB (`VmRSS`).
    static func residentKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    struct Outcome {
        let connections: Int
        let rate: Int
        let matching: Double
        let seconds: Int
        let published: Int
        let expected: Int
        let received: Int
        let idleKiBPerConnection: Double?
        var latency: Histogram<UInt64>

        mutating func report(json: Bool) {
            func micro(_ quantile: Double) -> Double { Double(latency.valueAtPercentile(quantile)) / 1000 }
            let memory = idleKiBPerConnection.map { String(format: "%.1f", $0) } ?? "n/a"
            if json {
                print(
                    #"{"connections":\#(connections),"rate":\#(rate),"matching":\#(matching),"seconds":\#(seconds),"published":\#(published),"expected_deliveries":\#(expected),"received":\#(received),"p50_us":\#(micro(50)),"p99_us":\#(micro(99)),"p999_us":\#(micro(99.9)),"max_us":\#(Double(latency.max) / 1000),"idle_kib_per_connection":\#(memory)}"#
                )
                return
            }
            print("connections        \(connections)")
            print(
                "published          \(published) events at \(rate)/s for \(seconds) s, \(Int(matching * 100))% block.new.*"
            )
            print("received           \(received) of \(expected) deliveries")
            print(String(format: "latency p50        %.0f µs", micro(50)))
            print(String(format: "latency p99        %.0f µs", micro(99)))
            print(String(format: "latency p99.9      %.0f µs", micro(99.9)))
            print(String(format: "latency max        %.0f µs", Double(latency.max) / 1000))
            print("idle memory        \(memory) KiB per connection (broker RSS)")
        }
    }
}
