import ArgumentParser
import Foundation
import Synchronization

/// `herald bench http`: publishes over `POST /v1/events`, one event per request and in batches, with a
/// number of requests in flight; every reply waits until its events are durable (docs/benchmarks.md).
struct BenchHTTP: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Measure HTTP publish throughput, single events and batches.",
        discussion: """
            Each of --in-flight worker threads sends its requests one after the other on one kept-alive \
            connection; with --close, on a new connection per request (Connection: close), which the \
            single-event figure then includes.
            """
    )

    @Option(help: "Events to publish in each mode.")
    var events = 20_000

    @Option(help: "Events per request in the batched mode (at most 1000).")
    var batch = 100

    @Option(name: .customLong("in-flight"), help: "Requests outstanding at once.")
    var inFlight = 32

    @Option(name: .customLong("payload-size"), help: "Bytes of each event's payload.")
    var payloadSize = 256

    @Flag(help: "Open a new connection for each request instead of keeping one per worker alive.")
    var close = false

    @Flag(help: "Start a broker for the run (in a temporary directory) instead of using --http.")
    var spawn = false

    @Option(help: "The HTTP listener of a running broker.")
    var http = "127.0.0.1:7480"

    func validate() throws {
        guard (1...1000).contains(batch) else { throw ValidationError("--batch must be 1 to 1000") }
        guard inFlight >= 1, (1...1_000_000_000).contains(events) else {
            throw ValidationError("--events must be from 1 to 1000000000 and --in-flight at least 1")
        }
    }

    func run() async throws {
        let spawned = spawn ? try SpawnedBroker.start() : nil
        defer { spawned?.stop() }
        let (host, port) = try hostAndPort(spawned?.http ?? http)
        let payload = "\"" + String(repeating: "x", count: max(0, payloadSize - 2)) + "\""
        // Ids of this run only: a second run within the broker's dedup window would be counted as duplicates.
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        for (mode, size) in [("single", 1), ("batched", batch)] {
            let requests = (events + size - 1) / size
            let taken = Taken()
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { workers in
                for _ in 0..<min(inFlight, requests) {
                    let connection = BenchHTTPConnection(host: host, port: port, keepAlive: !close)
                    workers.addTask {
                        try await onThread("herald-bench-http") {
                            while case let request = taken.next.add(1, ordering: .relaxed).oldValue, request < requests
                            {
                                let list = (0..<size).map {
                                    #"{"event_type":"bench.http","event_id":"\#(run)-\#(mode)-\#(request)-\#($0)","payload":\#(payload)}"#
                                }
                                let json = size == 1 ? list[0] : #"{"events":["# + list.joined(separator: ",") + "]}"
                                let response = try connection.post("/v1/events", body: Array(json.utf8))
                                guard response.status == 200 else {
                                    throw BenchError("HTTP \(response.status): \(response.body)")
                                }
                            }
                        }
                    }
                }
                try await workers.waitForAll()
            }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let published = requests * size
            print(
                String(
                    format: "%@: %ld events in %ld requests, %.0f events/s, %.0f requests/s", mode, published, requests,
                    Double(published) / seconds, Double(requests) / seconds))
        }
    }

    /// The next request to send, shared by the workers.
    final class Taken: Sendable {
        let next = Atomic<Int>(0)
    }
}
