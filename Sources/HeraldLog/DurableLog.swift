import Dispatch
import Foundation
import HeraldCore
import Metrics
import Synchronization

/// The durable log (docs/storage.md): `P` partitions of append-only segment files. Appends get their
/// offset at once and are written, synced under the fsync policy and reported durable by one writer
/// thread, so that one sync covers every append waiting for it (group commit) and no event loop ever
/// waits for the disk.
public final class DurableLog: Sendable {
    public let configuration: LogConfiguration
    /// What opening found and repaired.
    public let recovery: RecoveryReport
    let partitions: [Partition]
    private let writer: Writer
    private let observers = Observers()
    /// The format file, locked while the log is open: one process at a time.
    private let lock: LogFile

    /// Who is told when a partition has new readable records.
    private final class Observers: Sendable {
        let list = StateLock<[@Sendable (Int) -> Void]>([])
        /// Told of what an operator must know: damage passed over, a write that failed.
        let problems = StateLock<[@Sendable (String) -> Void]>([])
        /// What was told, by what it is about: each damaged place (`file@position`), the first failed write
        /// (every append fails from then on), the first failure to record the synced ends.
        private let told = StateLock<Set<String>>([])

        func notify(_ partition: Int) {
            for observer in list.withLock({ $0 }) { observer(partition) }
        }

        /// Tells `problem` unless something was told about `subject` already.
        func tellOnce(about subject: String, _ problem: @autoclosure () -> String) {
            guard told.withLock({ $0.insert(subject).inserted }) else { return }
            let problem = problem()
            for observer in problems.withLock({ $0 }) { observer(problem) }
        }
    }

    /// The writer thread's coordination.
    private final class Writer: Sendable {
        let wake = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        /// Set when the writer has been woken and has not started its round yet.
        let isWoken = Atomic<Bool>(false)
        /// Set when something waits for the next round (a confirm, a reader, a flush, a close): the writer
        /// does not linger before it.
        let isUrgent = Atomic<Bool>(false)
        /// Set while the writer lingers; the urgent signal that takes it down wakes the writer.
        let isLingering = Atomic<Bool>(false)
        /// ``LogConfiguration/lingerMilliseconds``, in nanoseconds.
        let linger: UInt64
        let state = StateLock(State())

        init(lingerMilliseconds: Int) {
            linger = UInt64(max(0, lingerMilliseconds)) * 1_000_000
        }

        struct State {
            var closing = false
            /// Set by ``stopLikeACrash()``: the writer stops without writing or syncing anything more.
            var crashing = false
            var flushWaiters: [@Sendable (Result<Void, LogError>) -> Void] = []
            /// Publishers paused until the backlog drains.
            var drainWaiters: [@Sendable () -> Void] = []
        }

        /// Wakes the writer for a round; `urgent`: without lingering (and ending a linger under way).
        func signal(urgent: Bool = true) {
            if urgent {
                isUrgent.store(true, ordering: .sequentiallyConsistent)
                if isLingering.exchange(false, ordering: .sequentiallyConsistent) {
                    wake.signal()
                    return
                }
            }
            if !isWoken.exchange(true, ordering: .sequentiallyConsistent) { wake.signal() }
        }

        /// Called by the writer when woken, before its round: waits up to ``linger`` for more appends unless
        /// the round is urgent or becomes so meanwhile. While it lingers `isWoken` stays set, so appends
        /// nobody waits for do not wake it again; the one urgent signal that finds it lingering does.
        func lingerUnlessUrgent() {
            guard linger > 0, !isUrgent.load(ordering: .sequentiallyConsistent) else { return }
            isLingering.store(true, ordering: .sequentiallyConsistent)
            var woken = false
            // Checked again after `isLingering` is up: an urgent signal before it did not see the writer
            // lingering, and so did not wake it.
            if !isUrgent.load(ordering: .sequentiallyConsistent) {
                woken = wake.wait(timeout: .now() + .nanoseconds(Int(linger))) == .success
            }
            if !isLingering.exchange(false, ordering: .sequentiallyConsistent), !woken {
                // An urgent signal took the flag down and wakes the writer: that wake-up belongs to this
                // linger, not to the next round.
                wake.wait()
            }
        }

        /// Whether the writer is lingering now (for tests).
        var lingers: Bool { isLingering.load(ordering: .sequentiallyConsistent) }
    }

    /// Opens the log in `configuration.directory`, creating it if needed and recovering it if not.
    public init(configuration: LogConfiguration) throws(LogError) {
        let started = ContinuousClock.now
        guard configuration.partitions >= 1 else { throw LogError.incompatible("a log needs at least one partition") }
        self.configuration = configuration
        try LogFile.makeDirectory(configuration.directory)
        let logID: UInt64
        (lock, logID) = try Self.checkFormat(configuration)
        var report = RecoveryReport()
        var partitions: [Partition] = []
        for index in 0..<configuration.partitions {
            partitions.append(
                try Partition(
                    index: index, directory: Self.partitionDirectory(configuration.directory, index),
                    configuration: configuration, report: &report))
        }
        // The partitions' directories (new on a first run) are entries of the log's: synced, so that a power
        // cut cannot lose the directory of records synced one by one under `always`.
        try LogFile.syncDirectory(configuration.directory)
        let journal = try Self.replayJournal(configuration, logID: logID, partitions, &report)
        if let synced = SyncedEnds.read(directory: configuration.directory) {
            for partition in partitions {
                let end = partition.writtenEnd
                if let known = synced[partition.index], known > end {
                    report.recordsLost.append(.init(partition: partition.index, offsets: end..<known))
                }
            }
        }
        let directory = configuration.directory
        journal?.checkpointing = { partitions.map(\.writtenEnd) }
        let observers = self.observers
        journal?.checkpointed = { ends in Self.writeSyncedEnds(ends, directory: directory, observers: observers) }
        report.duration = ContinuousClock.now - started
        self.partitions = partitions
        recovery = report
        writer = Writer(lingerMilliseconds: configuration.lingerMilliseconds)
        // Under `batch` a round syncs every partition it wrote at once (docs/storage.md, "Writing").
        let syncer = ParallelSync(
            helpers: configuration.fsync == .batch ? min(partitions.count, 8) - 1 : 0, name: "herald-sync")
        NamedThread.start("herald-log") { [partitions, writer, observers] in
            Self.runWriter(
                partitions: partitions, directory: directory, writer: writer, syncer: syncer, journal: journal,
                observers: observers,
                // How long each group commit's fsyncs take (docs/operations.md).
                fsyncDuration: Metrics.Timer(label: "herald_log_fsync_duration_seconds"))
        }
    }

    /// Opens the journal (under `batch`, or when one is left from a run under `batch`) and gives each
    /// partition back the records of its current generation that the partition lacks, synced; then starts
    /// the journal over. Returns it for the writer under `batch`.
    private static func replayJournal(
        _ configuration: LogConfiguration, logID: UInt64, _ partitions: [Partition], _ report: inout RecoveryReport
    ) throws(LogError) -> Journal? {
        guard configuration.fsync == .batch || Journal.exists(in: configuration.directory) else { return nil }
        let journal = try Journal(
            directory: configuration.directory, logID: logID, capacity: configuration.journalBytes)
        report.journalProblems = journal.problems
        var gapped = Set<Int>()
        var replayed = 0
        var gaps: [LogPosition] = []
        try journal.replay { index, records throws(LogError) in
            guard partitions.indices.contains(index), !gapped.contains(index) else { return }
            let (appended, missing) = partitions[index].replay(records)
            replayed += appended
            if let missing {
                gapped.insert(index)
                gaps.append(LogPosition(partition: index, offset: missing))
            }
        }
        report.recordsReplayed = replayed
        report.replayGaps = gaps
        report.records += replayed
        // The journal starts over next, and what it held must then be in synced segments: replayed here, or
        // already in them but maybe only in the page cache (a kill -9 loses nothing there, so nothing is
        // replayed, yet a power cut before the kernel writes the pages back would lose confirmed events).
        for partition in partitions {
            let (through, segments, failure) = partition.writePending()
            if let failure { throw failure }
            for segment in segments { try segment.file.sync() }
            try partition.segments.last!.file.sync()
            if let through { partition.markDurable(through: through) }
        }
        try journal.restart()
        return configuration.fsync == .batch ? journal : nil
    }

    static func partitionDirectory(_ directory: String, _ index: Int) -> String {
        "\(directory)/partition-\(String(zeroPadded: index, width: 3))"
    }

    /// The file `herald-log` names the format, the partition count (which must not change: the partition
    /// of a key depends on it) and the log's id (a random number that the journal's files carry, so that a
    /// journal of another log is never replayed into this one). It is locked (returned open) while the log
    /// is open, so that a second broker on the same directory is refused rather than write over the first.
    /// A file from before the id existed gets one.
    private static func checkFormat(_ configuration: LogConfiguration) throws(LogError) -> (LogFile, UInt64) {
        let path = "\(configuration.directory)/herald-log"
        let expected = "herald-log 1\npartitions \(configuration.partitions)\n"
        let exists = LogFile.exists(path)
        if !exists {
            // Partitions without the file that says how many there are: made again with the configured
            // count, the log could drop partitions or move keys to other ones, silently. Refused instead.
            let found = ((try? LogFile.names(in: configuration.directory)) ?? []).filter {
                $0.hasPrefix("partition-")
            }
            if !found.isEmpty {
                throw LogError.incompatible(
                    "\(path) is missing but \(configuration.directory) holds \(found.count) partition directories: "
                        + "restore the file (it says how many partitions the log has), or move the data away")
            }
        }
        let file = try LogFile(path: path, create: !exists)
        guard try file.tryLock() else {
            throw LogError.incompatible("\(configuration.directory) is in use by another open log (another broker?)")
        }
        if exists {
            var bytes: [UInt8] = []
            try file.read(into: &bytes, count: 4096, at: 0)
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
            guard lines.first == "herald-log 1", lines.count >= 2, lines[1].hasPrefix("partitions ") else {
                throw LogError.incompatible("\(path): not a Herald log of a format this version reads")
            }
            guard lines[1] == "partitions \(configuration.partitions)" else {
                throw LogError.incompatible(
                    "the log in \(configuration.directory) has \(lines[1].dropFirst(11)) partitions but log.partitions is "
                        + "\(configuration.partitions); the count cannot change, because it decides each key's partition"
                )
            }
            if lines.count >= 3, lines[2].hasPrefix("id "), let id = UInt64(lines[2].dropFirst(3), radix: 16) {
                return (file, id)
            }
        }
        // Written over the old text without cutting it first: the new text begins with it, so a crash in
        // the middle leaves a file that still reads (and gets an id at the next open).
        let id = UInt64.random(in: 1...UInt64.max)
        let text = expected + "id " + String(id, radix: 16) + "\n"
        try file.write(Array(text.utf8), at: 0)
        try file.sync()
        try LogFile.syncDirectory(configuration.directory)
        return (file, id)
    }

    // MARK: Appending and reading

    /// The number of partitions.
    public var partitionCount: Int { partitions.count }

    /// The segments of every partition and the bytes of their records.
    public var usage: (segments: Int, bytes: Int) {
        partitions.reduce((0, 0)) { total, partition in
            let usage = partition.usage
            return (total.0 + usage.segments, total.1 + usage.bytes)
        }
    }

    /// The partition of `key` (PROTOCOL.md §4.2): FNV-1a 64 of its UTF-8 bytes, modulo the count.
    public func partition(forKey key: String) -> Int {
        Int(FNV1a64.hash(key.utf8) % UInt64(partitions.count))
    }

    /// Appends an event to `partition`: assigns its offset, calls `encode` with it for the event's bytes
    /// (a stored envelope carries its offset), and queues the record. `encode` may decline by returning
    /// `nil` (the event turned out too large, say): nothing is appended and `nil` is returned. `whenDurable`
    /// is called on the log's writer thread when the record is durable under the fsync policy, or with the
    /// error that kept it from being. Returns the offset and the bytes.
    public func append(
        partition: Int,
        timestamp: Int64,
        encode: (Int64) -> [UInt8]?,
        whenDurable: DurabilityCallback? = nil
    ) throws(LogError) -> (offset: Int64, bytes: [UInt8])? {
        var bytes: [UInt8] = []
        let offset = try append(
            partition: partition, at: timestamp,
            record: { offset, _ in
                guard let encoded = encode(offset) else { return nil }
                bytes = encoded
                return .bytes(encoded)
            }, whenDurable: whenDurable)
        return offset.map { ($0, bytes) }
    }

    /// Appends an event to `partition` as ``append(partition:timestamp:encode:whenDurable:)`` does, with the
    /// record's timestamp the current time, read under the partition's lock as the offset is assigned and
    /// given to `record` with it (along a partition the timestamps follow the offsets, unless the system
    /// clock is set back). `record` gives the event's body: an envelope is encoded when the writer frames its
    /// record, not here, unless something needed its JSON before. Returns the offset.
    public func append(
        partition: Int,
        record: (_ offset: Int64, _ timestamp: Int64) -> RecordBody?,
        whenDurable: DurabilityCallback? = nil
    ) throws(LogError) -> Int64? {
        try append(partition: partition, at: nil, record: record, whenDurable: whenDurable)
    }

    private func append(
        partition: Int, at timestamp: Int64?, record: (Int64, Int64) -> RecordBody?, whenDurable: DurabilityCallback?
    ) throws(LogError) -> Int64? {
        if writer.state.withLock({ $0.closing }) { throw LogError.closed }
        let target = partitions[partition]
        guard let appended = try target.append(timestamp: timestamp, body: record, whenDurable: whenDurable)
        else { return nil }
        // Nobody waits for an append without `whenDurable` while no reader waits for the partition: the writer
        // may linger to write more with it, while its queue stays small.
        writer.signal(
            urgent: whenDurable != nil || appended.readerWaited
                || target.backlog.load(ordering: .relaxed) >= Self.lingerBacklogLimit)
        return appended.offset
    }

    /// A partition's queue above which its appends are written without lingering.
    static let lingerBacklogLimit = 256 << 10

    /// Says that a reader has read every durable record of `partition` and waits for more: the next record
    /// appended there is written without lingering (``LogConfiguration/lingerMilliseconds``), not held back
    /// from the reader by it. A consumer group calls it when a member finds nothing more to take.
    public func readerWaits(partition: Int) {
        // Records appended before the reader looked, and not yet written, are what it waits for.
        if partitions[partition].readerWaits() { writer.signal() }
    }

    /// Whether the writer is lingering: woken by appends nobody waits for, and waiting for more before it
    /// writes them (for tests).
    package var isLingering: Bool { writer.lingers }

    /// Appends `bytes`, made knowing the offset, and waits until the record is durable.
    public func appendDurably(partition: Int, timestamp: Int64, encode: (Int64) -> [UInt8]) async throws(LogError)
        -> (offset: Int64, bytes: [UInt8])
    {
        let (stream, continuation) = AsyncStream<Result<LogPosition, LogError>>.makeStream()
        let appended = try append(partition: partition, timestamp: timestamp, encode: encode) { result in
            continuation.yield(result)
            continuation.finish()
        }!
        for await result in stream { _ = try result.get() }
        return appended
    }

    /// Calls `callback` (on the writer thread, or at once) when the record at `position` is durable.
    public func whenDurable(_ position: LogPosition, _ callback: @escaping DurabilityCallback) {
        // Someone waits for the record now: a round that lingers must not make it wait too.
        if partitions[position.partition].whenDurable(position.offset, callback) { writer.signal() }
    }

    /// Readable records of `partition` from `offset` on (from its first retained record when `offset` is
    /// older), at most `maximumRecords` and about `maximumBytes` (always at least one if any is readable).
    /// Damaged records (a flipped bit, a bad sector) are passed over, and told once to the observers of
    /// ``observeDamage(_:)``.
    public func read(partition: Int, from offset: Int64, maximumRecords: Int = 1000, maximumBytes: Int = 1 << 20)
        throws(LogError) -> [StoredRecord]
    {
        try partitions[partition].read(from: offset, maximumRecords: maximumRecords, maximumBytes: maximumBytes) {
            reportDamage($0, partition)
        }
    }

    /// Calls `body` with the offset, timestamp and event bytes of each readable record of `partition` from
    /// `offset` on, until it returns `false`: a read of many records without copying each (the bytes are
    /// valid during the call only). Damaged records are passed over and told as ``read(partition:from:maximumRecords:maximumBytes:)``
    /// tells them.
    public func visit(
        partition: Int, from offset: Int64,
        _ body: (_ offset: Int64, _ timestamp: Int64, UnsafeRawBufferPointer) throws(LogError) -> Bool
    ) throws(LogError) {
        try partitions[partition].visit(
            from: offset, passOver: { true }, damaged: { reportDamage($0, partition) }, body)
    }

    private func reportDamage(_ damage: Partition.Damage, _ partition: Int) {
        observers.tellOnce(
            about: "\(damage.file)@\(damage.position)",
            "\(damage.file): damaged record at byte \(damage.position) (\(damage.reason)): offsets "
                + "\(damage.offsets.lowerBound) to \(damage.offsets.upperBound - 1) of partition \(partition) "
                + "cannot be read and are passed over")
    }

    /// Tells the problem observers `problem`, once per `subject`: for what works beside the log and must be
    /// known the same way (a consumer group's dead-letter queue that cannot take an event).
    package func reportProblem(about subject: String, _ problem: String) {
        observers.tellOnce(about: subject, problem)
    }

    /// Calls `observer` with a sentence for what an operator must know, once each: a damaged place in a
    /// segment that a read passed over (acknowledged events are lost there), the first write or sync that
    /// failed (the partitions it failed refuse appends until a restart). The broker logs them as errors.
    public func observeProblems(_ observer: @escaping @Sendable (String) -> Void) {
        observers.problems.withLock { $0.append(observer) }
    }

    /// The first retained offset of `partition` and the offset after its last readable record.
    public func bounds(partition: Int) -> (start: Int64, end: Int64) {
        partitions[partition].bounds
    }

    /// The offset of the first readable record of `partition` with a timestamp at or after `timestamp`
    /// (milliseconds since 1970); the end when there is none.
    public func offset(partition: Int, atOrAfter timestamp: Int64) throws(LogError) -> Int64 {
        try partitions[partition].offset(atOrAfter: timestamp)
    }

    /// Calls `observer` (on the writer thread) each time records of a partition become readable, with the
    /// partition's index. It must return quickly: the writer waits for it.
    public func observeReadable(_ observer: @escaping @Sendable (_ partition: Int) -> Void) {
        observers.list.withLock { $0.append(observer) }
    }

    // MARK: Flushing, retention, closing

    /// Bytes of records appended and not yet written, over all partitions: what publishers that do not wait
    /// for confirms can pile up when the disk is slower than they are (fsync `always`).
    public var backlog: Int { partitions.reduce(0) { $0 + $1.backlog.load(ordering: .relaxed) } }

    /// The backlog above which publishers should stop sending until it drains (``whenBacklogDrains(_:)``).
    public static let backlogLimit = 4 << 20

    /// Calls `callback` (on the writer thread, or at once) once the backlog is below half of
    /// ``backlogLimit``.
    public func whenBacklogDrains(_ callback: @escaping @Sendable () -> Void) {
        let now = writer.state.withLock { state in
            guard backlog >= Self.backlogLimit / 2, !state.closing else { return true }
            state.drainWaiters.append(callback)
            return false
        }
        if now { callback() } else { writer.signal() }
    }

    /// Writes everything appended so far and syncs every partition, whatever the fsync policy
    /// (`maintenance.data` with `flush`).
    public func flush() async throws(LogError) {
        let (stream, continuation) = AsyncStream<Result<Void, LogError>>.makeStream()
        let accepted = writer.state.withLock { state in
            guard !state.closing else { return false }
            state.flushWaiters.append { result in
                continuation.yield(result)
                continuation.finish()
            }
            return true
        }
        guard accepted else { throw LogError.closed }
        writer.signal()
        for await result in stream { try result.get() }
    }

    /// Deletes sealed segments past the retention limits (or older than `olderThan`, milliseconds since
    /// 1970, when given: `maintenance.data` with `cleanup`). Returns the segments and bytes deleted.
    public func applyRetention(now: Int64, olderThan: Int64? = nil) throws(LogError) -> (segments: Int, bytes: Int) {
        var limit = configuration.retentionMilliseconds.map { now - $0 }
        if let olderThan { limit = max(limit ?? olderThan, olderThan) }
        var total = (segments: 0, bytes: 0)
        for partition in partitions {
            let deleted = try partition.applyRetention(
                olderThan: limit, maximumBytes: configuration.retentionBytesPerPartition)
            total.segments += deleted.segments
            total.bytes += deleted.bytes
        }
        return total
    }

    /// Deletes the sealed segments of `partition` whose every record is before `offset` (the active segment
    /// stays): for a log whose reader is done with its oldest records. Returns the segments and bytes deleted.
    public func deleteSegments(partition: Int, before offset: Int64) throws(LogError) -> (segments: Int, bytes: Int) {
        try partitions[partition].deleteSegments(before: offset)
    }

    /// Stops the writer as a `kill -9` would stop the broker (for tests): what is queued is not written,
    /// nothing more is synced, the journal is not started over; the log's lock is released so that the
    /// directory can be opened again.
    func stopLikeACrash() {
        let first = writer.state.withLock { state in
            defer {
                state.closing = true
                state.crashing = true
            }
            return !state.closing
        }
        guard first else { return }
        writer.signal()
        writer.finished.wait()
        lock.unlock()
    }

    /// Writes and syncs what is queued and stops the writer; later appends fail with ``LogError/closed``.
    public func close() {
        let first = writer.state.withLock { state in
            defer { state.closing = true }
            return !state.closing
        }
        guard first else { return }
        writer.signal()
        writer.finished.wait()
        lock.unlock()
    }

    // MARK: The writer thread

    private static func runWriter(
        partitions: [Partition], directory: String, writer: Writer, syncer: ParallelSync, journal: Journal?,
        observers: Observers, fsyncDuration: Metrics.Timer
    ) {
        while true {
            writer.wake.wait()
            writer.lingerUnlessUrgent()
            // Taken down before the queues are read: a signal after this wakes the next round.
            writer.isUrgent.store(false, ordering: .sequentiallyConsistent)
            writer.isWoken.store(false, ordering: .sequentiallyConsistent)
            let (closing, crashing, flushWaiters) = writer.state.withLock { state in
                defer { state.flushWaiters.removeAll() }
                return (state.closing, state.crashing, state.flushWaiters)
            }
            if crashing {
                try? journal?.waitForCheckpoint()
                syncer.stop()
                writer.finished.signal()
                return
            }
            var failure: LogError?
            // Write every partition's queued records (and, under `batch`, add them to the journal), then make
            // them durable with one sync, then report them durable.
            var written: [(partition: Partition, through: Int64, segments: [Segment])] = []
            for partition in partitions {
                let (through, segments, error) = partition.writePending(journal: journal)
                if let error {
                    failure = failure ?? error
                } else if let through {
                    written.append((partition, through, segments))
                }
            }
            if let journal, !written.isEmpty {
                let started = DispatchTime.now().uptimeNanoseconds
                if let error = commit(journal, partitions: partitions, written: &written, syncer: syncer) {
                    failure = failure ?? error
                }
                fsyncDuration.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            }
            for entry in written {
                entry.partition.markDurable(through: entry.through)
                observers.notify(entry.partition.index)
            }
            let drained = writer.state.withLock { state -> [@Sendable () -> Void] in
                let backlog = partitions.reduce(0) { $0 + $1.backlog.load(ordering: .relaxed) }
                guard closing || backlog < Self.backlogLimit / 2 else { return [] }
                defer { state.drainWaiters.removeAll() }
                return state.drainWaiters
            }
            for waiter in drained { waiter() }
            if !flushWaiters.isEmpty || closing {
                // Every partition is synced even when another one fails; the first error is reported.
                for partition in partitions {
                    do throws(LogError) {
                        if closing { try partition.trimPreallocation() }
                        try partition.segments.last!.file.sync()
                    } catch {
                        failure = failure ?? error
                    }
                }
                // A checkpoint: the journal's records are all in synced segments now.
                if failure == nil, let journal {
                    do throws(LogError) { try journal.startOver() } catch { failure = error }
                }
                // Everything written is synced: the ends the next open checks (after any checkpoint, which
                // `startOver` waited for, so that its older ends do not replace these).
                if failure == nil {
                    writeSyncedEnds(partitions.map(\.writtenEnd), directory: directory, observers: observers)
                }
                for waiter in flushWaiters { waiter(failure.map { .failure($0) } ?? .success(())) }
            }
            if let failure {
                observers.tellOnce(
                    about: "failed write",
                    "the log could not write or sync (\(failure)): the partitions it failed answer storage_failed "
                        + "to every publish until the broker is restarted")
            }
            if closing {
                // A checkpoint still syncing uses the helpers: it ends first.
                try? journal?.waitForCheckpoint()
                syncer.stop()
                writer.finished.signal()
                return
            }
        }
    }

    /// Records the partitions' synced ends (``SyncedEnds``); a failure is told once: until the file can be
    /// written again, a later open checks against older ends and may not see records lost since.
    private static func writeSyncedEnds(_ ends: [Int64], directory: String, observers: Observers) {
        do throws(LogError) {
            try SyncedEnds.write(ends, directory: directory)
        } catch {
            observers.tellOnce(
                about: "synced ends",
                "the synced ends could not be recorded (\(error)): until they can, the next start may not see "
                    + "acknowledged events that go missing")
        }
    }

    /// Makes a `batch` round durable through the journal (``Journal/commit(activeSegments:syncer:)``). A
    /// journal that could not be written or synced, or a checkpoint that failed, fails every partition:
    /// what they hold may then be on disk nowhere but in a journal file that must not be reused.
    private static func commit(
        _ journal: Journal, partitions: [Partition],
        written: inout [(partition: Partition, through: Int64, segments: [Segment])], syncer: ParallelSync
    ) -> LogError? {
        do throws(LogError) {
            try journal.commit(activeSegments: { partitions.map { $0.segments.last!.file } }, syncer: syncer)
            return nil
        } catch {
            for partition in partitions { partition.fail(error) }
            written.removeAll()
            return error
        }
    }
}
