import Foundation
import Testing

@testable import HeraldLog

/// A write that fails while the log runs (docs/storage.md, "Failures while running"): the partition it
/// concerns refuses every later append until the log is opened again, the other partitions go on, and what
/// was durable before is all there after. The failing disk is `/dev/full` (every write fails with `ENOSPC`),
/// put where the partition's next segment will be created, so the failure comes when it rolls.
@Suite(.timeLimit(.minutes(3))) struct StorageFailureTests {
    /// Records of this many bytes with their header: ten fill a segment.
    static func text(_ index: Int) -> String {
        "event-" + String(format: "%04d", index) + String(repeating: "x", count: 66)
    }
    static let recordSize = Record.headerSize + text(0).utf8.count

    private func configuration(_ directory: String, fsync: LogConfiguration.FsyncPolicy) -> LogConfiguration {
        LogConfiguration(
            directory: directory, partitions: 2, fsync: fsync, segmentBytes: 10 * Self.recordSize,
            indexIntervalBytes: 64)
    }

    @Test(arguments: [LogConfiguration.FsyncPolicy.batch, .always, .never])
    func aFailedWriteFailsItsPartitionUntilReopenedAndKeepsWhatWasDurable(fsync: LogConfiguration.FsyncPolicy)
        async throws
    {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try DurableLog(configuration: configuration(directory.path, fsync: fsync))
        // The segment that record 10 of partition 0 starts.
        let nextSegment = segmentPath(directory.path, partition: 0, base: 10)
        try FileManager.default.createSymbolicLink(atPath: nextSegment, withDestinationPath: "/dev/full")
        for index in 0..<10 { #expect(try await log.appendText(Self.text(index), partition: 0) == Int64(index)) }

        // The roll to the failing segment: that append is refused, and so is every later one, at once.
        await #expect(throws: LogError.self) { _ = try await log.appendText(Self.text(10), partition: 0) }
        #expect(throws: LogError.self) {
            try log.append(partition: 0, timestamp: 1_000) { _ in Array(Self.text(11).utf8) }
        }
        // The other partition is not concerned (under `batch` its round's journal entry is written alone).
        for index in 0..<3 { #expect(try await log.appendText("other-\(index)", partition: 1) == Int64(index)) }
        // What was durable is still read.
        #expect(try log.texts(partition: 0) == (0..<10).map(Self.text))
        log.close()

        // The disk is fixed (the link removed with what the failed roll left beside it), the log opened again.
        let partition = DurableLog.partitionDirectory(directory.path, 0)
        for name in try FileManager.default.contentsOfDirectory(atPath: partition)
        where name.hasPrefix(Segment.name(10)) {
            try FileManager.default.removeItem(atPath: partition + "/" + name)
        }
        let reopened = try DurableLog(configuration: configuration(directory.path, fsync: fsync))
        defer { reopened.close() }
        #expect(try reopened.texts(partition: 0) == (0..<10).map(Self.text))
        #expect(try reopened.texts(partition: 1) == (0..<3).map { "other-\($0)" })
        #expect(reopened.recovery.recordsLost.isEmpty)
        #expect(reopened.recovery.missingRecords.isEmpty)
        // The refused events took no offset for good: the next append is 10.
        #expect(try await reopened.appendText(Self.text(10), partition: 0) == 10)
    }
}
