import Foundation
import Testing

@testable import HeraldLog

/// The consumer group's state file, written by hand (``GroupStateFile/encode(_:)``) and read by
/// `JSONDecoder`.
struct GroupStateFileTests {
    private let snapshot = GroupSnapshot(
        group: "indexer-2", topics: ["block.#", "tx.*.confirmed", "chain.\"quoted\"\\"],
        partitions: [
            .init(next: 12, pending: [.init(offset: 3, attempts: 1, timestamp: 1_780_000_000_000)]),
            .init(next: 0, pending: []),
            .init(
                next: 9_007_199_254_740_993,
                pending: [
                    .init(offset: 9_007_199_254_740_990, attempts: 5, timestamp: 0),
                    .init(offset: 9_007_199_254_740_991, attempts: 2, timestamp: -1),
                ]),
        ],
        deadLettersFrom: 42)

    @Test func whatIsWrittenReadsBackTheSame() throws {
        let bytes = GroupStateFile.encode(snapshot)
        #expect(try JSONDecoder().decode(GroupSnapshot.self, from: Data(bytes)) == snapshot)
        var withoutDeadLetters = snapshot
        withoutDeadLetters.deadLettersFrom = nil
        let decoded = try JSONDecoder().decode(
            GroupSnapshot.self, from: Data(GroupStateFile.encode(withoutDeadLetters)))
        #expect(decoded == withoutDeadLetters)
    }

    @Test func theFileIsWhatJSONEncoderWroteBefore() throws {
        // Files written by earlier versions came from JSONEncoder with sorted keys; the same state gives the
        // same bytes (no topic here has a '/', which JSONEncoder escapes and JSON does not need to).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(
            String(decoding: GroupStateFile.encode(snapshot), as: UTF8.self)
                == String(decoding: try encoder.encode(snapshot), as: UTF8.self))
    }

    @Test func aWrittenFileIsReadBack() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = GroupStateFile(directory: directory.path + "/g")
        try file.write(snapshot)
        #expect(try file.read() == snapshot)
    }
}
