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

    @Test func theFileOfAGenerationNamesItsJournal() throws {
        var withJournal = snapshot
        withJournal.format = 2
        withJournal.journal = 7
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: GroupStateFile.encode(withJournal), as: UTF8.self)
        #expect(text == String(decoding: try encoder.encode(withJournal), as: UTF8.self))
        #expect(text.contains(#""group":"indexer-2","journal":7,"partitions""#))
    }

    /// Every kind of change, applied on reading: a new pending event, one delivered again, one settled, the
    /// read position and the dead letters moved.
    private let changes = GroupStateChanges([
        .pending(partition: 1, .init(offset: 0, attempts: 1, timestamp: 5)),
        .pending(partition: 0, .init(offset: 3, attempts: 2, timestamp: 1_780_000_000_000)),
        .settled(partition: 2, offset: 9_007_199_254_740_990),
        .next(partition: 1, 1),
        .deadLettersFrom(43),
    ])

    private var changed: GroupSnapshot {
        var state = snapshot
        state.partitions[0].pending[0].attempts = 2
        state.partitions[1] = .init(next: 1, pending: [.init(offset: 0, attempts: 1, timestamp: 5)])
        state.partitions[2].pending.removeFirst()
        state.deadLettersFrom = 43
        return state
    }

    /// A temporary group directory whose state file, generation 1, holds ``snapshot``, and its writer.
    private func stateOfGenerationOne() throws -> (TemporaryDirectory, GroupStateFile, GroupStateWriter) {
        let directory = try TemporaryDirectory()
        let file = GroupStateFile(directory: directory.path + "/g")
        var writer = GroupStateWriter(file: file, generation: 0)
        do {
            try writer.writeState(snapshot)
        } catch {
            directory.remove()
            throw error
        }
        return (directory, file, writer)
    }

    @Test func changesAppendedToTheJournalAreReadBackOverTheState() throws {
        let (directory, file, written) = try stateOfGenerationOne()
        defer { directory.remove() }
        var writer = written
        #expect(!writer.wantsState)
        try writer.append(changes)
        try writer.append(GroupStateChanges([.settled(partition: 0, offset: 3)]))
        var expected = changed
        expected.partitions[0].pending = []
        expected.format = 2
        expected.journal = 1
        #expect(try file.read() == expected)
        #expect(try LogFile.names(in: file.directory) == ["journal.1", "state.json"])
    }

    @Test func aTornOrDamagedLastRecordEndsTheJournal() throws {
        let (directory, file, written) = try stateOfGenerationOne()
        defer { directory.remove() }
        var writer = written
        try writer.append(changes)
        let journal = GroupStateJournal.path(in: file.directory, generation: 1)
        let first = try Data(contentsOf: URL(fileURLWithPath: journal))
        try writer.append(GroupStateChanges([.settled(partition: 0, offset: 3), .next(partition: 0, 13)]))
        let both = try Data(contentsOf: URL(fileURLWithPath: journal))
        var expected = changed
        expected.format = 2
        expected.journal = 1
        // Cut anywhere in the second record: the first alone is applied.
        for length in first.count..<both.count {
            try both.prefix(length).write(to: URL(fileURLWithPath: journal))
            #expect(try file.read() == expected, "cut at \(length)")
        }
        // A byte flipped in the second record's payload: the same.
        var damaged = both
        damaged[first.count + 10] ^= 0x40
        try damaged.write(to: URL(fileURLWithPath: journal))
        #expect(try file.read() == expected)
    }

    @Test func aDamagedRecordWithIntactOnesAfterItIsRefusedNamingTheFile() throws {
        let (directory, file, written) = try stateOfGenerationOne()
        defer { directory.remove() }
        var writer = written
        try writer.append(changes)
        let journal = GroupStateJournal.path(in: file.directory, generation: 1)
        let first = try Data(contentsOf: URL(fileURLWithPath: journal)).count
        try writer.append(GroupStateChanges([.settled(partition: 0, offset: 3)]))
        try writer.append(GroupStateChanges([.next(partition: 0, 13)]))
        let whole = try Data(contentsOf: URL(fileURLWithPath: journal))
        // The second of three records damaged: the acks after it were confirmed, so nothing is dropped.
        var damaged = whole
        damaged[first + 9] ^= 0x01
        try damaged.write(to: URL(fileURLWithPath: journal))
        #expect {
            try file.read()
        } throws: { error in
            "\(error)".contains("journal.1: the record at byte \(first) is damaged and intact ones follow it")
        }
        // A record whose checksum holds but whose change this version does not know (a tag 9).
        var unknown = Array(whole.prefix(first))
        unknown += GroupStateJournal.record(GroupStateChanges([.deadLettersFrom(1)])).enumerated().map { index, byte in
            index == 8 ? 9 : byte
        }
        let payload = Array(unknown[(first + 8)...])
        let checksum = payload.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: checksum.littleEndian) { unknown.replaceSubrange((first + 4)..<(first + 8), with: $0) }
        try Data(unknown).write(to: URL(fileURLWithPath: journal))
        #expect {
            try file.read()
        } throws: { error in
            "\(error)".contains("journal.1: the record at byte \(first) holds changes this version does not read")
        }
    }

    @Test func aJournalOfTheNextGenerationLeftBeforehandIsNotReadOverANewState() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = GroupStateFile(directory: directory.path + "/g")
        try LogFile.makeDirectory(file.directory)
        let stale = GroupStateJournal.path(in: file.directory, generation: 1)
        try Data(GroupStateJournal.record(changes)).write(to: URL(fileURLWithPath: stale))
        var writer = GroupStateWriter(file: file, generation: 0)
        try writer.writeState(snapshot)
        var expected = snapshot
        expected.format = 2
        expected.journal = 1
        #expect(try file.read() == expected)
    }

    /// A retired writer (its group deleted, its directory gone) writes nothing: a whole state would make the
    /// directory again, and the group would come back at the next start.
    @Test func aRetiredWriterWritesNothing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = GroupStateFile(directory: directory.path + "/g")
        var writer = GroupStateWriter(file: file, generation: 0)
        try writer.writeState(snapshot)
        try writer.append(changes)
        try FileManager.default.removeItem(atPath: file.directory)
        writer.retire()
        try writer.writeState(snapshot)
        try writer.append(changes)
        #expect(!LogFile.exists(file.directory))
    }

    @Test func aJournalPastTwiceTheStateIsFoldedIntoTheNextGeneration() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = GroupStateFile(directory: directory.path + "/g")
        var writer = GroupStateWriter(file: file, generation: 4)
        writer.smallestCompaction = 0
        try writer.writeState(snapshot)
        #expect(writer.generation == 5)
        let stateSize = GroupStateFile.encode(try #require(try file.read())).count
        // Each record: 8 bytes of framing and a 13-byte `settled`.
        var appended = 0
        while !writer.wantsState {
            try writer.append(GroupStateChanges([.settled(partition: 1, offset: Int64(appended))]))
            appended += 1
        }
        #expect(appended * 21 > 2 * stateSize)
        #expect((appended - 1) * 21 <= 2 * stateSize)
        var state = try #require(try file.read())
        try writer.writeState(state)
        #expect(writer.generation == 6)
        #expect(try LogFile.names(in: file.directory) == ["state.json"])
        state.journal = 6
        #expect(try file.read() == state)
    }

    @Test func aWrittenFileIsReadBack() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = GroupStateFile(directory: directory.path + "/g")
        try file.write(snapshot)
        #expect(try file.read() == snapshot)
    }
}
