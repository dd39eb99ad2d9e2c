import Foundation
import Testing

@testable import HeraldLog

/// The journal of the `batch` policy (docs/storage.md, "The journal"): a round is durable once the journal
/// is synced, so records the segments lose with the page cache (a power cut: written, never synced) come
/// back from it at the next open. Simulated here by stopping the writer as a crash would and cutting the
/// segments' unsynced tails.
@Suite(.timeLimit(.minutes(3))) struct JournalTests {
    private func configuration(_ directory: String, partitions: Int = 2, journalBytes: Int = 1 << 20)
        -> LogConfiguration
    {
        LogConfiguration(
            directory: directory, partitions: partitions, fsync: .batch, segmentBytes: 1 << 20, indexIntervalBytes: 64,
            journalBytes: journalBytes)
    }

    private func text(_ index: Int) -> String { "event-\(index)-" + String(repeating: "y", count: index % 7) }

    /// Appends `count` records, each awaited until durable, spread over the partitions by index; returns
    /// each partition's texts in order.
    private func append(_ count: Int, to log: DurableLog) async throws -> [[String]] {
        var texts = Array(repeating: [String](), count: log.partitionCount)
        for index in 0..<count {
            let partition = index % log.partitionCount
            try await log.appendText(text(index), partition: partition)
            texts[partition].append(text(index))
        }
        return texts
    }

    /// The end position of each record of `texts` in a segment.
    private func ends(_ texts: [String]) -> [Int] {
        var position = 0
        return texts.map { text in
            position += Record.headerSize + text.utf8.count
            return position
        }
    }

    /// The newest generation of the journal's two files.
    private func journalGeneration(_ directory: String) throws -> UInt64 {
        try Journal.fileNames.map { name in
            let file = try LogFile(path: directory + "/" + name, create: false)
            var header: [UInt8] = []
            try file.read(into: &header, count: 16, at: 0)
            return header.withUnsafeBytes {
                UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        }.max()!
    }

    @Test func recordsTheSegmentsLostAreWrittenAgainFromTheJournal() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path))
        let texts = try await append(40, to: log)
        log.stopLikeACrash()
        // Partition 0 lost its last ten records; partition 1's file kept its length but not the bytes of its
        // last five (zeros, as pages never written back read).
        let zero = ends(texts[0])
        try LogFile(path: segmentPath(directory.path, partition: 0), create: false).truncate(to: zero[9])
        let one = ends(texts[1])
        try LogFile(path: segmentPath(directory.path, partition: 1), create: false)
            .write([UInt8](repeating: 0, count: one[19] - one[14]), at: one[14])

        let reopened = try DurableLog(configuration: configuration(directory.path))
        #expect(try reopened.texts(partition: 0) == texts[0])
        #expect(try reopened.texts(partition: 1) == texts[1])
        #expect(reopened.recovery.recordsReplayed == 15)
        #expect(reopened.recovery.replayGaps.isEmpty)
        #expect(reopened.recovery.records == 40)
        // The next append follows the replayed records.
        #expect(try await reopened.appendText("next", partition: 0) == 20)
        reopened.close()
        // A closed log's journal holds nothing to replay.
        let again = try DurableLog(configuration: configuration(directory.path))
        defer { again.close() }
        #expect(again.recovery.recordsReplayed == 0)
        #expect(try again.texts(partition: 0) == texts[0] + ["next"])
    }

    @Test func aCrashThatLostNothingReplaysNothingTwice() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path))
        let texts = try await append(25, to: log)
        log.stopLikeACrash()
        let reopened = try DurableLog(configuration: configuration(directory.path))
        defer { reopened.close() }
        #expect(reopened.recovery.recordsReplayed == 0)
        #expect(try reopened.texts(partition: 0) == texts[0])
        #expect(try reopened.texts(partition: 1) == texts[1])
    }

    @Test func aCorruptJournalEntryEndsTheReplayThere() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path, partitions: 1))
        let texts = try await append(6, to: log)
        log.stopLikeACrash()
        // Each record was its own round, so its own entry: flip a byte in the fourth entry's event bytes. A new
        // log's rounds go to the first file.
        var position = JournalFile.headerSize
        for index in 0..<3 {
            position += JournalFile.entryHeaderSize + Record.headerSize + texts[0][index].utf8.count
        }
        let journal = try LogFile(path: directory.path + "/journal.0", create: false)
        var byte: [UInt8] = []
        let flipped = position + JournalFile.entryHeaderSize + Record.headerSize + 1
        try journal.read(into: &byte, count: 1, at: flipped)
        try journal.write([byte[0] ^ 0x01], at: flipped)
        try LogFile(path: segmentPath(directory.path), create: false).truncate(to: 0)

        let reopened = try DurableLog(configuration: configuration(directory.path, partitions: 1))
        defer { reopened.close() }
        #expect(try reopened.texts() == Array(texts[0][0..<3]))
        #expect(reopened.recovery.recordsReplayed == 3)
    }

    @Test func aFullJournalIsACheckpointAfterWhichItStartsOver() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Room for about 70 one-record rounds in each file (4 KiB after the header; 24 + 24 + 12 bytes each).
        let small = configuration(directory.path, journalBytes: 8192)
        let log = try DurableLog(configuration: small)
        let texts = try await append(300, to: log)
        log.stopLikeACrash()
        // Opening started a generation, and each switch to the other file (a checkpoint) another: four for 300
        // rounds.
        #expect(try journalGeneration(directory.path) == 5)

        // Nothing was lost: every record is there once, in order.
        let reopened = try DurableLog(configuration: small)
        #expect(try reopened.texts(partition: 0) == texts[0])
        #expect(try reopened.texts(partition: 1) == texts[1])
        #expect(reopened.recovery.recordsReplayed == 0)
        reopened.close()
        // The journal holds the records since the last checkpoint only (here: since the open, with room for
        // all): a partition that lost everything cannot be given back what was synced before, and recovery
        // says where records are missing.
        let roomy = configuration(directory.path, journalBytes: 1 << 20)
        let third = try DurableLog(configuration: roomy)
        _ = try await append(300, to: third)
        third.stopLikeACrash()
        try LogFile(path: segmentPath(directory.path, partition: 1), create: false).truncate(to: 0)
        let damaged = try DurableLog(configuration: roomy)
        defer { damaged.close() }
        #expect(damaged.recovery.replayGaps == [LogPosition(partition: 1, offset: 0)])
        #expect(try damaged.texts(partition: 1).isEmpty)
        #expect(try damaged.texts(partition: 0).count == 300)
    }

    /// `synced-ends` (docs/storage.md, "Recovery"): a segment cut exactly at a record's end has nothing
    /// damaged for recovery to find; the ends recorded at the close show the records lost.
    @Test func aSegmentCutAtARecordsEndAfterACloseIsReportedAsLost() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path))
        let texts = try await append(20, to: log)
        log.close()
        try LogFile(path: segmentPath(directory.path, partition: 0), create: false).truncate(to: ends(texts[0])[6])
        let reopened = try DurableLog(configuration: configuration(directory.path))
        #expect(reopened.recovery.truncations.isEmpty)
        #expect(reopened.recovery.recordsLost == [.init(partition: 0, offsets: 7..<10)])
        #expect(try reopened.texts(partition: 0) == Array(texts[0].prefix(7)))
        #expect(try reopened.texts(partition: 1) == texts[1])
        reopened.close()
        // The close recorded the ends as they are now: the loss is reported once.
        let again = try DurableLog(configuration: configuration(directory.path))
        defer { again.close() }
        #expect(again.recovery.recordsLost.isEmpty)
    }

    @Test func theSyncedEndsFileReadsBackWholeOrNotAtAll() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try SyncedEnds.write([12_345_678_901, 0, 7], directory: directory.path)
        let path = directory.path + "/" + SyncedEnds.fileName
        let size = try LogFile(path: path, create: false).size()
        #expect(size == 4096)
        #expect(SyncedEnds.read(directory: directory.path) == [0: 12_345_678_901, 1: 0, 2: 7])
        // Written over in place: the same size, shorter numbers and all.
        try SyncedEnds.write([1, 2, 3], directory: directory.path)
        #expect(try LogFile(path: path, create: false).size() == size)
        #expect(SyncedEnds.read(directory: directory.path) == [0: 1, 1: 2, 2: 3])
        // A byte changed (a torn write) fails the checksum: no check rather than a wrong one.
        try LogFile(path: path, create: false).write(Array("9".utf8), at: 16)
        #expect(SyncedEnds.read(directory: directory.path) == nil)
    }

    /// Each checkpoint records what it synced: records lost below it after a crash are reported, even when
    /// the journal (started over since) cannot give them back.
    @Test func whatACheckpointSyncedIsCheckedAfterACrash() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let small = configuration(directory.path, journalBytes: 8192)
        let log = try DurableLog(configuration: small)
        _ = try await append(300, to: log)
        log.stopLikeACrash()
        let synced = try #require(SyncedEnds.read(directory: directory.path))
        let checkpointed = try #require(synced[0])
        #expect(checkpointed > 0 && checkpointed <= 150)
        try LogFile(path: segmentPath(directory.path, partition: 0), create: false).truncate(to: 0)
        let reopened = try DurableLog(configuration: small)
        defer { reopened.close() }
        #expect(reopened.recovery.recordsLost == [.init(partition: 0, offsets: 0..<checkpointed)])
        #expect(try reopened.texts(partition: 0).isEmpty)
    }

    @Test func aJournalFileShorterThanItsHeaderIsReported() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path))
        _ = try await append(4, to: log)
        log.close()
        try LogFile(path: directory.path + "/journal.0", create: false).truncate(to: 10)
        let reopened = try DurableLog(configuration: configuration(directory.path))
        defer { reopened.close() }
        #expect(
            reopened.recovery.journalProblems == [
                "\(directory.path)/journal.0: the header is not whole (10 bytes), not replayed"
            ])
        #expect(try reopened.texts(partition: 0).count + reopened.texts(partition: 1).count == 4)
    }

    @Test func aJournalOfAnotherLogIsNotReplayedAndIsReported() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let mine = directory.path + "/mine"
        let other = directory.path + "/other"
        let log = try DurableLog(configuration: configuration(mine, partitions: 1))
        _ = try await append(3, to: log)
        log.close()
        let foreign = try DurableLog(configuration: configuration(other, partitions: 1))
        for index in 0..<5 { try await foreign.appendText("foreign-\(index)") }
        foreign.stopLikeACrash()
        // The other log's journal copied over this one's, and this log's segment emptied so that offsets
        // line up: replaying would invent records.
        for name in Journal.fileNames {
            try? FileManager.default.removeItem(atPath: mine + "/" + name)
            try FileManager.default.copyItem(atPath: other + "/" + name, toPath: mine + "/" + name)
        }
        try LogFile(path: segmentPath(mine), create: false).truncate(to: 0)
        let reopened = try DurableLog(configuration: configuration(mine, partitions: 1))
        defer { reopened.close() }
        #expect(try reopened.texts().isEmpty)
        #expect(reopened.recovery.recordsReplayed == 0)
        #expect(reopened.recovery.journalProblems.count == 2)
        #expect(reopened.recovery.journalProblems.allSatisfy { $0.contains("written by another log") })
    }

    @Test func aHeaderNamingAGenerationThisLogNeverWritesIsNotReplayed() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path, partitions: 1))
        _ = try await append(3, to: log)
        log.stopLikeACrash()
        // A whole header of this log with the largest generation (its CRC right): the next would overflow.
        let path = directory.path + "/journal.0"
        let file = try LogFile(path: path, create: false)
        var header: [UInt8] = []
        try file.read(into: &header, count: 28, at: 0)
        header.replaceSubrange(8..<16, with: withUnsafeBytes(of: UInt64.max.littleEndian) { Array($0) })
        let crc = header.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<24])) }
        header.replaceSubrange(24..<28, with: withUnsafeBytes(of: crc.littleEndian) { Array($0) })
        try file.write(header, at: 0)
        let reopened = try DurableLog(configuration: configuration(directory.path, partitions: 1))
        defer { reopened.close() }
        #expect(reopened.recovery.journalProblems.contains { $0.contains("is not one this log writes") })
        #expect(try reopened.texts().count == 3)
    }

    @Test func onlyTheBatchPolicyKeepsAJournalButAnyPolicyReplaysOneLeftBehind() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var always = configuration(directory.path + "/always")
        always.fsync = .always
        let first = try DurableLog(configuration: always)
        try await first.appendText("a")
        first.close()
        #expect(!Journal.exists(in: directory.path + "/always"))

        let log = try DurableLog(configuration: configuration(directory.path + "/switched", partitions: 1))
        let texts = try await append(5, to: log)
        log.stopLikeACrash()
        try LogFile(path: segmentPath(directory.path + "/switched"), create: false).truncate(to: 0)
        var never = configuration(directory.path + "/switched", partitions: 1)
        never.fsync = .never
        let reopened = try DurableLog(configuration: never)
        defer { reopened.close() }
        #expect(try reopened.texts() == texts[0])
        #expect(reopened.recovery.recordsReplayed == 5)
    }
}
