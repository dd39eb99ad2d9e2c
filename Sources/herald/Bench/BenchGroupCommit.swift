import ArgumentParser
import Foundation
import HeraldCore
import HeraldLog

/// `herald bench group-commit`: what a confirmed ack costs a consumer group as its pending events grow,
/// timed in this process with no socket. A group with N events delivered and not acknowledged is made on a
/// temporary log; then acks of one event each are made one after another, each waiting until the group's
/// state on disk holds it (as a confirmed `ack` waits before its `ok`). Over a socket the `ok` also queues
/// behind the event frames sent before it, which hides this cost (docs/benchmarks.md).
struct BenchGroupCommit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group-commit",
        abstract: "Time a consumer group's confirmed acks with many events pending, in process.",
        discussion: """
            For each --pending count: stores that many events in a one-partition log in a temporary \
            directory, delivers them all to one member, then times --acks acks of one event each, from the \
            ack to its state being on disk. Prints p50, p99 and max per count.
            """
    )

    @Option(help: "Pending counts to measure, comma-separated.")
    var pending = "1000,10000,100000,1000000"

    @Option(help: "Acks timed per count.")
    var acks = 200

    @Option(
        help: ArgumentHelp(
            "Then nack this many events, due again 1 ms apart from 200 ms on, and report the process's CPU "
                + "time until they are all due (the deadline timer's work)."))
    var nacks = 0

    @Flag(help: "Print one JSON object per count instead of text.")
    var json = false

    private var counts: [Int] { pending.split(separator: ",").compactMap { Int($0) } }

    func validate() throws {
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }), counts.count == pending.split(separator: ",").count
        else { throw ValidationError("--pending must be positive counts, comma-separated") }
        guard (1...100_000).contains(acks) else { throw ValidationError("--acks must be from 1 to 100000") }
        guard nacks >= 0 else { throw ValidationError("--nacks must be at least 0") }
        guard counts.allSatisfy({ $0 > acks + nacks }) else {
            throw ValidationError("every --pending count must be more than --acks and --nacks together")
        }
    }

    func run() async throws {
        for count in counts {
            let directory = NSTemporaryDirectory() + "herald-bench-group-" + UUID().uuidString.prefix(8)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (latencies, nackCPU) = try await Self.measure(
                pending: count, acks: acks, nacks: nacks, directory: directory)
            let sorted = latencies.sorted()
            let p50 = sorted[sorted.count / 2]
            let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
            // The nacks fall due over `nacks` ms from 200 ms on; the CPU is counted until 100 ms after the last.
            let nackSpan = 200 + nacks + 100
            if json {
                let nackFields =
                    nacks > 0 ? #","nacks":\#(nacks),"nack_cpu_ms":\#(nackCPU / 1000),"nack_span_ms":\#(nackSpan)"# : ""
                printLine(
                    #"{"pending":\#(count),"acks":\#(acks),"p50_us":\#(p50),"p99_us":\#(p99),"max_us":\#(sorted.last!)\#(nackFields)}"#
                )
            } else {
                printLine(
                    "\(count) pending: ack to state on disk p50 \(Self.text(p50)), p99 \(Self.text(p99)), "
                        + "max \(Self.text(sorted.last!)) (\(acks) acks)"
                        + (nacks > 0 ? "; \(nacks) nacks: \(nackCPU / 1000) ms of CPU in \(nackSpan) ms" : ""))
            }
        }
    }

    private static func text(_ microseconds: Int) -> String {
        String(format: microseconds >= 10_000 ? "%.1f ms" : "%.2f ms", Double(microseconds) / 1000)
    }

    /// Microseconds from each ack to its commit, and the process's CPU time in microseconds while the nacks
    /// wait for their redelivery.
    private static func measure(pending count: Int, acks: Int, nacks: Int, directory: String) async throws -> (
        [Int], Int
    ) {
        let log = try DurableLog(configuration: LogConfiguration(directory: directory + "/log", partitions: 1))
        defer { log.close() }
        let payload = Array(#"{"event_type":"bench.group","event_id":"e","payload":{}}"#.utf8)
        let sealed = try EventEnvelope(json: payload).json
        for _ in 0..<count {
            _ = try log.append(partition: 0, timestamp: 1_780_000_000_000) { _ in sealed }
        }
        try await log.flush()
        let groups = try ConsumerGroups(log: log, directory: directory + "/groups", settings: GroupSettings())
        defer { groups.close() }
        let (group, member) = try groups.join(
            group: "bench", topics: [try TopicPattern("#")], start: .earliest, subscription: { 1 }, maxInFlight: count,
            ackWaitMs: 3_600_000)
        var delivered: [UInt64] = []
        delivered.reserveCapacity(count)
        while delivered.count < count {
            let taken = try group.take(member, maximum: count - delivered.count, maximumBytes: 64 << 20)
            guard !taken.isEmpty else { throw ValidationError("the group delivered \(delivered.count) of \(count)") }
            delivered.append(contentsOf: taken.map(\.seq))
        }
        // The deliveries' own commit first, so that the acks time only themselves.
        try await committed(group, group.ack(member, seqs: [delivered.removeLast()]).version)
        var latencies: [Int] = []
        for seq in delivered.prefix(acks) {
            let start = monotonicNanoseconds()
            try await committed(group, group.ack(member, seqs: [seq]).version)
            latencies.append(Int((monotonicNanoseconds() - start) / 1000))
        }
        guard nacks > 0 else { return (latencies, 0) }
        let before = processCPUMicroseconds()
        for (index, seq) in delivered.dropFirst(acks).prefix(nacks).enumerated() {
            _ = group.nack(member, seq: seq, delayMs: 200 + Int64(index), deadLetter: false)
        }
        try await Task.sleep(for: .milliseconds(200 + nacks + 100))
        return (latencies, processCPUMicroseconds() - before)
    }

    private static func processCPUMicroseconds() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + usage.ru_utime.tv_usec
            + usage.ru_stime.tv_usec
    }

    private static func committed(_ group: ConsumerGroup, _ version: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            group.whenCommitted(version) { continuation.resume(with: $0) }
        }
    }
}
