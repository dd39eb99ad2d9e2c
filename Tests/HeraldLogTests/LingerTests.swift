import Foundation
import Testing

@testable import HeraldLog

/// The writer's linger (docs/storage.md, "Lingering"): appends nobody waits for are written together after
/// a wait, and whatever waits for a record — a confirm, a reader, a flush, a close, a long queue — ends it.
@Suite(.timeLimit(.minutes(3))) struct LingerTests {
    /// A linger no test outlasts: a record that becomes readable within a test was written because something
    /// ended the wait.
    private static let forever = 3_600_000

    private func open(_ directory: TemporaryDirectory, fsync: LogConfiguration.FsyncPolicy = .batch) throws
        -> DurableLog
    {
        try DurableLog(
            configuration: LogConfiguration(
                directory: directory.path, partitions: 2, fsync: fsync, lingerMilliseconds: Self.forever))
    }

    /// Appends `text` to `partition` without waiting for it (a publish without `id`).
    @discardableResult
    private func appendUnconfirmed(_ log: DurableLog, _ text: String, partition: Int = 0) throws -> Int64 {
        try #require(try log.append(partition: partition, timestamp: 1) { _ in Array(text.utf8) }).offset
    }

    @Test(arguments: [LogConfiguration.FsyncPolicy.always, .batch, .never])
    func appendsNobodyWaitsForLingerUntilAConfirmedOneComes(_ fsync: LogConfiguration.FsyncPolicy) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try open(directory, fsync: fsync)
        defer { log.close() }
        try appendUnconfirmed(log, "a", partition: 0)
        try await waitUntil { log.isLingering }
        #expect(log.bounds(partition: 0).end == 0, "written before the linger ended")
        // Another one joins the round rather than waking the writer again.
        try appendUnconfirmed(log, "b", partition: 1)
        #expect(log.isLingering)
        #expect(log.bounds(partition: 1).end == 0)
        // A confirmed append ends the wait, and its round writes every partition's queue.
        try await log.appendText("c", partition: 1)
        #expect(try log.texts(partition: 0) == ["a"])
        #expect(try log.texts(partition: 1) == ["b", "c"])
    }

    @Test func aReaderWaitingForAPartitionGetsItsNextRecordWithoutTheLinger() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try open(directory)
        defer { log.close() }
        log.readerWaits(partition: 0)
        // Another partition's record lingers: the reader waits for partition 0 only.
        try appendUnconfirmed(log, "other", partition: 1)
        try await waitUntil { log.isLingering }
        try appendUnconfirmed(log, "a", partition: 0)
        // The round writes both partitions' queues (and marks them durable one after the other).
        try await waitUntil { log.bounds(partition: 0).end == 1 && log.bounds(partition: 1).end == 1 }
        #expect(try log.texts(partition: 1) == ["other"])
        // The wait was for one record: the next one lingers again.
        try appendUnconfirmed(log, "b", partition: 0)
        try await waitUntil { log.isLingering }
        #expect(log.bounds(partition: 0).end == 1)
    }

    /// A reader that looked just before a record was written (a burst: the next record was appended while
    /// the round of the one it was woken for ran) waits for that record, which is queued already.
    @Test func aReaderThatWaitsForARecordAlreadyQueuedHasItWrittenAtOnce() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try open(directory)
        defer { log.close() }
        try appendUnconfirmed(log, "a", partition: 0)
        try await waitUntil { log.isLingering }
        log.readerWaits(partition: 0)
        try await waitUntil { log.bounds(partition: 0).end == 1 }
        // Nothing was queued this time: the next append is the one it waits for.
        log.readerWaits(partition: 0)
        #expect(log.partitions[0].isReaderWaiting)
    }

    @Test func waitingForAnAppendedRecordEndsTheLinger() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try open(directory)
        defer { log.close() }
        let offset = try appendUnconfirmed(log, "a")
        try await waitUntil { log.isLingering }
        // What the broker does for a repeated event_id with a confirm: it waits for the first one.
        let (stream, continuation) = AsyncStream<Result<LogPosition, LogError>>.makeStream()
        log.whenDurable(LogPosition(partition: 0, offset: offset)) { result in
            continuation.yield(result)
            continuation.finish()
        }
        var results = stream.makeAsyncIterator()
        #expect(try await results.next()?.get() == LogPosition(partition: 0, offset: offset))
        #expect(try log.texts() == ["a"])
    }

    @Test func flushAndCloseWriteWhatLingers() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try open(directory)
        try appendUnconfirmed(log, "a")
        try await waitUntil { log.isLingering }
        try await log.flush()
        #expect(try log.texts() == ["a"])
        try appendUnconfirmed(log, "b")
        try await waitUntil { log.isLingering }
        log.close()
        let reopened = try open(directory)
        defer { reopened.close() }
        #expect(try reopened.texts() == ["a", "b"])
    }

    @Test func aLongQueueIsWrittenWithoutLingering() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let log = try open(directory)
        defer { log.close() }
        // Nothing is written while the writer lingers, so the queue only grows until an append takes it past
        // the limit; that append's round writes every record up to it.
        let record = String(repeating: "x", count: 1000)
        var appended: Int64 = 0
        while log.backlog < DurableLog.lingerBacklogLimit {
            appended = try appendUnconfirmed(log, record) + 1
            try #require(appended < 10_000, "the queue never reached the limit")
        }
        try await waitUntil { log.bounds(partition: 0).end >= appended }
        #expect(try log.texts().count >= Int(appended))
    }
}
