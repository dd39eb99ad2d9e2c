// A Herald module in Swift, on HeraldClient: it subscribes to new blocks, prints each one, and publishes
// `example.block_seen` for it. It finds the broker through HERALD_SOCKET (default ./herald-data/herald.sock)
// and stops after `--count N` blocks, or on SIGTERM/SIGINT.
//
//     swift run example-swift-module --count 3

import Foundation
import HeraldClient
import HeraldCore

/// `--count N`: stop after N blocks; 0 runs until stopped.
let count = CommandLine.arguments.firstIndex(of: "--count").flatMap { index in
    CommandLine.arguments.indices.contains(index + 1) ? Int(CommandLine.arguments[index + 1]) : nil
} ?? 0

/// What this module says about one block.
struct BlockSeen: Codable {
    var blockEventID: String
    var blockNumber: Int?

    enum CodingKeys: String, CodingKey {
        case blockEventID = "block_event_id"
        case blockNumber = "block_number"
    }
}

/// The part of `block.new`'s payload this module reads.
struct BlockNumber: Decodable {
    var blockNumber: Int?

    enum CodingKeys: String, CodingKey {
        case blockNumber = "block_number"
    }
}

/// Writes a line straight to standard output: the broker logs a supervised module's output as it comes,
/// and `print` would hold it in a buffer while standard output is a pipe.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

// `_exit`, not `exit`: a signal handler may only make async-signal-safe calls, and `exit` runs the process's
// exit handlers while the client's threads still run. The broker's stop is a SIGTERM (docs/modules.md).
signal(SIGTERM) { _ in _exit(0) }
signal(SIGINT) { _ in _exit(0) }

let client = try await HeraldClient.connect(.fromEnvironment(module: "example-swift", version: "1.0.0"))
say("connected as session \(client.session ?? "?")")
let blocks = try await client.subscribe(["block.new.#"])
var seen = 0
for await block in blocks {
    let number = try? block.payload?.decode(BlockNumber.self).blockNumber
    say("block \(number.map(String.init) ?? "?") on chain \(block.chainID.map(String.init) ?? "-") (\(block.eventID))")
    do {
        try await client.publish(
            try EventEnvelope(
                eventType: "example.block_seen",
                chainID: block.chainID,
                payload: RawJSON(encoding: BlockSeen(blockEventID: block.eventID, blockNumber: number))
            )
        )
    } catch {
        // The connection went as the block came: the client connects again on its own, and this block's
        // note is lost (a publish without confirm is at most once).
        say("publish failed: \(error)")
    }
    seen += 1
    if count > 0 && seen >= count { break }
}
await client.close()
