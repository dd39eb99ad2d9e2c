import Foundation
import HeraldCore
import HeraldLog
import Synchronization
import Testing

/// PROTOCOL.md §4.4 by killing (ARCHITECTURE.md, "Durability is tested by killing"): `herald serve` runs as
/// a child process, three connections publish with confirms, the broker gets SIGKILL mid-stream, and the
/// log, recovered, must hold every confirmed event exactly once at the offset its `ok` named. Each policy
/// is run `HERALD_CRASH_ROUNDS` times (20 in `make test`, 200 in `make crash-test`).
@Suite(.timeLimit(.minutes(5)))
struct CrashTests {
    static let rounds = max(1, Int(ProcessInfo.processInfo.environment["HERALD_CRASH_ROUNDS"] ?? "") ?? 20)
    /// Confirmations to wait for before the kill (the publishers keep going until it).
    static let confirmationsBeforeKill = 100

    @Test(arguments: ["always", "batch"])
    func everyConfirmedEventSurvivesKillNine(_ fsync: String) async throws {
        for round in 0..<Self.rounds {
            try await crashOnce(fsync: fsync, round: round)
        }
    }

    /// What the publishers were told: event id → where the broker said it stored it.
    final class Confirmations: Sendable {
        let confirmed = Mutex<[String: LogPosition]>([:])
        let reached: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation

        init() {
            (reached, continuation) = AsyncStream.makeStream()
        }

        func record(_ eventID: String, _ position: LogPosition) {
            let count = confirmed.withLock { confirmed in
                confirmed[eventID] = position
                return confirmed.count
            }
            if count == CrashTests.confirmationsBeforeKill { continuation.finish() }
        }
    }

    private func crashOnce(fsync: String, round: Int) async throws {
        let directory = NSTemporaryDirectory() + "herald-crash-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "[log]\nfsync = \"\(fsync)\"\n".write(toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let socket = directory + "/h.sock"
        let run = try HeraldRun.start(
            ["serve", "--config", "herald.toml", "--data-dir", "data", "--socket", socket, "--http", "127.0.0.1:0"],
            in: directory)
        #expect(await run.firstLine()?.hasPrefix("herald ready socket=\(socket) http=127.0.0.1:") == true)
        let confirmations = Confirmations()
        try await withThrowingTaskGroup(of: Void.self) { publishers in
            for connection in 0..<3 {
                publishers.addTask {
                    try await onOwnThread { try Self.publishUntilKilled(socket, connection, confirmations) }
                }
            }
            for await _ in confirmations.reached {}
            kill(run.process.processIdentifier, SIGKILL)
            try await publishers.waitForAll()
        }
        let (status, _) = await run.finish()
        #expect(status == SIGKILL, "round \(round)")

        // Recovery, as `herald serve` does it at its next start.
        let log = try DurableLog(configuration: LogConfiguration(directory: directory + "/data/log", partitions: 8))
        defer { log.close() }
        // A kill loses no synced record (the page cache survives it): recovery reports no loss.
        #expect(log.recovery.recordsLost.isEmpty, "\(fsync), round \(round): \(log.recovery.recordsLost)")
        #expect(log.recovery.replayGaps.isEmpty, "\(fsync), round \(round): \(log.recovery.replayGaps)")
        var stored: [String: LogPosition] = [:]
        for partition in 0..<log.partitionCount {
            var next: Int64 = 0
            while true {
                let records = try log.read(partition: partition, from: next)
                guard let last = records.last else { break }
                for record in records {
                    let envelope = try EventEnvelope(json: record.bytes, form: .delivered)
                    #expect(envelope.offset == record.offset && envelope.partition == partition)
                    #expect(stored[envelope.eventID] == nil, "\(envelope.eventID) stored twice (round \(round))")
                    stored[envelope.eventID] = LogPosition(partition: partition, offset: record.offset)
                }
                next = last.offset + 1
            }
        }
        let confirmed = confirmations.confirmed.withLock { $0 }
        #expect(confirmed.count >= Self.confirmationsBeforeKill)
        let missing = confirmed.filter { stored[$0.key] != $0.value }
        #expect(missing.isEmpty, "\(fsync), round \(round): \(missing.count) confirmed events lost or moved")
    }

    /// Publishes confirmed events (one in flight) until the broker goes away; records each `ok`.
    private static func publishUntilKilled(_ socket: String, _ connection: Int, _ confirmations: Confirmations)
        throws
    {
        let peer = try BlockingPeer(path: socket)
        try peer.hello("crash-\(connection)")
        var index = 0
        while true {
            let eventID = "c\(connection)-\(index)"
            do {
                try peer.send(
                    #"{"op":"publish","id":\#(index),"event":{"event_type":"block.new","chain_id":\#(index % 7),"event_id":"\#(eventID)","payload":{"n":\#(index)}}}"#
                )
            } catch {
                return  // killed
            }
            guard let reply = try? peer.receive() else { return }
            guard reply.hasPrefix(#"{"op":"ok","id":\#(index),"#) else { throw PeerError("unexpected \(reply)") }
            confirmations.record(eventID, try position(in: reply))
            index += 1
        }
    }

    private static func position(in reply: String) throws -> LogPosition {
        func integer(after field: String) throws -> Int64 {
            guard let range = reply.range(of: "\"\(field)\":") else { throw PeerError("no \(field) in \(reply)") }
            return Int64(reply[range.upperBound...].prefix { $0.isNumber }) ?? -1
        }
        return LogPosition(partition: Int(try integer(after: "partition")), offset: try integer(after: "offset"))
    }
}
