import Foundation
import HeraldCore
import HeraldLog
import Testing

/// A disk that fills while `herald serve` runs (docs/storage.md, "Failures while running"), made real with a
/// file size limit: the broker runs under `ulimit -f` with `SIGXFSZ` ignored, so that a write past the limit
/// fails (`EFBIG`) as a write to a full disk fails (`ENOSPC`), while syncs of what was written succeed.
@Suite(.timeLimit(.minutes(2)))
struct DiskFullTests {
    @Test func afterAFailedWriteTheNextStartHasEveryConfirmedEventAndCountsNoneLost() async throws {
        let directory = NSTemporaryDirectory() + "herald-full-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "[log]\nfsync = \"always\"\npartitions = 1\npersist = [\"block.#\"]\n".write(
            toFile: directory + "/herald.toml", atomically: true, encoding: .utf8)
        let socket = directory + "/h.sock"
        // 1 MiB per file: the partition's segment fills after about 240 of these events.
        let run = try HeraldRun.start(
            [
                "-c", #"trap '' XFSZ; ulimit -f 1024; exec "$0" "$@""#, HeraldRun.executable,
                "serve", "--config", "herald.toml", "--data-dir", "data", "--socket", socket, "--http", "127.0.0.1:0",
            ], in: directory, program: "/bin/bash")
        #expect(await run.firstLine()?.hasPrefix("herald ready socket=\(socket)") == true)

        var confirmed: [String] = []
        var refused: String?
        // The connection is closed before the stop (the broker would wait for it).
        do {
            let peer = try BlockingPeer(path: socket)
            try peer.hello("filler")
            let payload = String(repeating: "f", count: 4000)
            for index in 0..<5000 where refused == nil {
                try peer.send(
                    #"{"op":"publish","id":\#(index),"event":{"event_type":"block.new","event_id":"f-\#(index)","payload":"\#(payload)"}}"#
                )
                let reply = try #require(try peer.receive())
                if reply.hasPrefix(#"{"op":"ok","id":\#(index),"#) {
                    #expect(reply.contains(#""offset":\#(index),"partition":0"#))
                    confirmed.append("f-\(index)")
                } else {
                    refused = reply
                }
            }
        }
        #expect(confirmed.count > 100)
        #expect(refused?.contains(#""code":"storage_failed""#) == true, "\(refused ?? "")")
        kill(run.process.processIdentifier, SIGTERM)
        let (status, errors) = await run.finish()
        #expect(status == 0)
        #expect(errors.contains("the log could not write or sync"))

        // The next start: every confirmed event at the offset its `ok` named, and no loss reported — the
        // refused event was never acknowledged, so it is not counted as lost.
        let log = try DurableLog(configuration: LogConfiguration(directory: directory + "/data/log", partitions: 1))
        defer { log.close() }
        #expect(log.recovery.recordsLost.isEmpty, "\(log.recovery.recordsLost)")
        let records = try log.read(partition: 0, from: 0, maximumRecords: 10_000, maximumBytes: 1 << 30)
        #expect(try records.map { try EventEnvelope(json: $0.bytes, form: .delivered).eventID } == confirmed)
        #expect(records.map(\.offset) == (0..<Int64(confirmed.count)).map { $0 })
    }
}
