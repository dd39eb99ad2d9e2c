import DequeModule
import HeraldCore
import Synchronization

/// One partition of the log: a directory of segments, appended to in offset order. Appends are queued in
/// memory with their offsets assigned at once; the log's writer thread (``DurableLog``) writes them to the
/// active segment, rolls to a new segment at ``LogConfiguration/segmentBytes``, syncs under the fsync
/// policy and then calls those waiting for durability. Readers see what is durable (under `never`, what is
/// written).
final class Partition: Sendable {
    let index: Int
    let directory: String
    private let configuration: LogConfiguration
    private let state: StateLock<State>
    /// Bytes of records appended and not yet written (queued, or in the writer's current round).
    let backlog = Atomic<Int>(0)

    private struct State {
        var segments: [Segment]
        /// The offset the next append gets.
        var nextOffset: Int64
        /// Records appended and not yet written: their bodies, framed by the writer when it takes them.
        var pending = PendingRecords()
        /// The buffers of the round written last, emptied, to be the next round's ``pending``.
        var spare: PendingRecords?
        /// Offsets below this are readable (durable; written under `never`).
        var readableOffset: Int64
        /// Callbacks waiting for offsets to become durable, in offset order.
        var waiters = Deque<(offset: Int64, callback: DurabilityCallback)>()
        /// Set once a write or sync failed: nothing more is accepted (the log must be reopened).
        var failure: LogError?
        /// Set when a reader has read every durable record and waits for the next (``readerWaits()``); the
        /// next append takes it down and says so, to have its round written without lingering.
        var readerWaits = false
    }

    /// Records appended and not yet written. Appends queue each event's body (``RecordBody``); the writer
    /// thread frames them into `bytes` (header, checksum, the event's bytes), so that neither the framing nor
    /// the encoding of an envelope runs on the appending event loop.
    struct PendingRecords {
        var appended: [(offset: Int64, timestamp: Int64, body: RecordBody)] = []
        /// The records' sizes as queued, header included: what they add to the backlog.
        var queuedBytes = 0
        /// The records framed back to back, and where each starts (by ``frame()``).
        var bytes: [UInt8] = []
        var records: [(offset: Int64, timestamp: Int64, start: Int, size: Int)] = []
        var isEmpty: Bool { appended.isEmpty && records.isEmpty }

        /// Frames every appended record into `bytes`.
        mutating func frame() {
            for record in appended {
                let start = bytes.count
                record.body.bytes.withUnsafeBytes {
                    Record.append(offset: record.offset, timestamp: record.timestamp, data: $0, to: &bytes)
                }
                records.append((record.offset, record.timestamp, start, bytes.count - start))
            }
            appended.removeAll(keepingCapacity: true)
        }

        /// Empties it, keeping its buffers for a later round.
        mutating func empty() {
            appended.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true)
            records.removeAll(keepingCapacity: true)
            queuedBytes = 0
        }
    }

    /// Opens (recovering) or creates the partition in `directory`.
    init(index: Int, directory: String, configuration: LogConfiguration, report: inout RecoveryReport)
        throws(LogError)
    {
        self.index = index
        self.directory = directory
        self.configuration = configuration
        try LogFile.makeDirectory(directory)
        let segments = try Self.recover(directory: directory, configuration: configuration, report: &report)
        report.records += Int(segments.last!.nextOffset - segments.first!.baseOffset)
        let next = segments.last!.nextOffset
        state = StateLock(State(segments: segments, nextOffset: next, readableOffset: next))
    }

    // MARK: Appending

    /// Assigns the next offset, lets `body` give the event's body knowing it and the record's timestamp
    /// (`timestamp`, or when `nil` the current time, read under the lock), and queues it for the writer to
    /// frame. Returns the offset and whether a reader waited for this record (``readerWaits()``), or `nil`
    /// when `body` declined (returned `nil`): then nothing is queued and the offset goes to the next append.
    /// `whenDurable`, if given, is called (on the log's writer thread) once the record is durable under the
    /// fsync policy, or failed.
    func append(
        timestamp: Int64?,
        body encode: (_ offset: Int64, _ timestamp: Int64) -> RecordBody?,
        whenDurable: DurabilityCallback?
    ) throws(LogError) -> (offset: Int64, readerWaited: Bool)? {
        try state.withLock { state throws(LogError) in
            if let failure = state.failure { throw failure }
            let offset = state.nextOffset
            let timestamp = timestamp ?? Timestamp.currentMilliseconds()
            guard let body = encode(offset, timestamp) else { return nil }
            state.nextOffset += 1
            let readerWaited = state.readerWaits
            state.readerWaits = false
            let size = Record.headerSize + body.size
            state.pending.appended.append((offset, timestamp, body))
            state.pending.queuedBytes += size
            backlog.add(size, ordering: .relaxed)
            if let whenDurable { state.waiters.append((offset, whenDurable)) }
            return (offset, readerWaited)
        }
    }

    /// Says that a reader has read every durable record and waits for the next. Returns whether records are
    /// queued (appended, not yet taken by a round): the reader waits for them now, and the caller has them
    /// written without lingering. Otherwise the next append says a reader waited for it.
    func readerWaits() -> Bool {
        state.withLock { state in
            if !state.pending.isEmpty { return true }
            state.readerWaits = true
            return false
        }
    }

    /// Whether a reader waits for the next append (for tests).
    var isReaderWaiting: Bool { state.withLock { $0.readerWaits } }

    /// Its segments and the bytes of their records.
    var usage: (segments: Int, bytes: Int) {
        state.withLock { state in (state.segments.count, state.segments.reduce(0) { $0 + $1.size }) }
    }

    /// Writes what is queued to the segment files (rolling as needed) and returns the segments written
    /// to, which the caller syncs (or not) before calling ``markDurable(through:)``. Runs on the writer
    /// thread only, so the file writes happen outside the lock. Under `always` each record is synced as it
    /// is written.
    /// The largest queue buffer kept for a later round.
    static let spareLimit = 4 << 20

    /// `journal`, when given, gets the round's records (back to back, as written to the segment) once they
    /// are written, as this partition's entry.
    func writePending(journal: Journal? = nil) -> (written: Int64?, segments: [Segment], failure: LogError?) {
        var pending = PendingRecords()
        let (active, failed) = state.withLock { state in
            if let spare = state.spare {
                state.spare = nil
                pending = spare
            }
            swap(&pending, &state.pending)
            return (state.segments.last!, state.failure)
        }
        // A failed partition writes nothing more. What was queued when it failed was failed with it (its
        // waiters were told), and written after the failed bytes it would be read — and confirmed to a retry
        // of the same `event_id` — past a hole that recovery then cuts at.
        if let failed {
            backlog.subtract(pending.queuedBytes, ordering: .relaxed)
            return (nil, [], pending.isEmpty ? nil : failed)
        }
        pending.frame()
        let result = write(pending, from: active)
        if let journal, result.written != nil {
            pending.bytes.withUnsafeBytes { journal.add(partition: index, records: $0) }
        }
        backlog.subtract(pending.queuedBytes, ordering: .relaxed)
        // The buffers go back, emptied, for a later round: nothing is reallocated once they are large enough
        // for a round. A round swollen by a burst (or a slow disk) is not kept: at most `spareLimit` bytes
        // wait idle.
        guard pending.bytes.capacity <= Self.spareLimit else { return result }
        pending.empty()
        state.withLock { $0.spare = pending }
        return result
    }

    private func write(_ pending: PendingRecords, from active: Segment)
        -> (written: Int64?, segments: [Segment], failure: LogError?)
    {
        guard let last = pending.records.last else { return (nil, [], nil) }
        var segment = active
        var touched: [Segment] = [segment]
        do throws(LogError) {
            var runStart = 0
            var runPosition = state.withLock { _ in segment.size }
            var position = runPosition
            for record in pending.records {
                if position > 0 && position + record.size > configuration.segmentBytes {
                    // Roll: write what this segment takes, seal it, and start the next at this offset.
                    try write(pending.bytes, runStart..<record.start, to: segment, at: runPosition)
                    // A sealed segment keeps no zeros after its records.
                    try segment.file.truncate(to: position)
                    segment.allocated = position
                    try segment.file.sync()
                    try state.withLock { _ throws(LogError) in try segment.writeIndexFiles() }
                    let next = try Segment(directory: directory, baseOffset: record.offset, create: true)
                    try LogFile.syncDirectory(directory)
                    state.withLock { $0.segments.append(next) }
                    segment = next
                    touched.append(next)
                    runStart = record.start
                    runPosition = 0
                    position = 0
                }
                state.withLock { _ in
                    segment.noteRecord(
                        offset: record.offset, timestamp: record.timestamp, position: position, size: record.size,
                        interval: configuration.indexIntervalBytes)
                }
                position += record.size
                if configuration.fsync == .always {
                    try write(pending.bytes, runStart..<(record.start + record.size), to: segment, at: runPosition)
                    try segment.file.sync()
                    runStart = record.start + record.size
                    runPosition = position
                }
            }
            try write(pending.bytes, runStart..<pending.bytes.count, to: segment, at: runPosition)
        } catch {
            fail(error)
            return (nil, touched, error)
        }
        return (last.offset, touched, nil)
    }

    private func write(_ bytes: [UInt8], _ range: Range<Int>, to segment: Segment, at position: Int) throws(LogError) {
        guard !range.isEmpty else { return }
        while segment.allocated < position + range.count {
            try segment.file.write(Self.zeros, at: segment.allocated)
            segment.allocated += Self.preallocation
        }
        try segment.file.write(bytes, range, at: position)
        state.withLock { _ in segment.written = max(segment.written, position + range.count) }
    }

    /// The active segment's file grows by this many zeros ahead of its records, so that a sync after an
    /// append does not also have to write the file's new length (docs/storage.md, "Preallocation"): one
    /// sync per 128 KiB of records changes the length instead of every one.
    static let preallocation = 128 << 10
    private static let zeros = [UInt8](repeating: 0, count: preallocation)

    /// The offset after the last record written to the segment files (synced or not): what a sync of the
    /// active segment now makes durable. On the writer thread, between rounds. For a partition that failed,
    /// the end of what was durable before: the failed round's records were noted in the segment before
    /// their write failed, and the synced ends must not count them (the next open would report them lost,
    /// though no publisher was told they were stored).
    var writtenEnd: Int64 {
        state.withLock { $0.failure == nil ? $0.segments.last!.nextOffset : $0.readableOffset }
    }

    /// Makes offsets through `offset` readable and calls those waiting for them.
    func markDurable(through offset: Int64) {
        let ready = state.withLock { state -> [(offset: Int64, callback: DurabilityCallback)] in
            // Failed meanwhile: nothing becomes readable (its waiters were failed).
            guard state.failure == nil else { return [] }
            state.readableOffset = max(state.readableOffset, offset + 1)
            var ready: [(offset: Int64, callback: DurabilityCallback)] = []
            while let first = state.waiters.first, first.offset <= offset {
                ready.append(state.waiters.removeFirst())
            }
            return ready
        }
        for waiter in ready { waiter.callback(.success(LogPosition(partition: index, offset: waiter.offset))) }
    }

    /// Calls `callback` once `offset` is durable: at once if it already is. Returns whether it waits.
    @discardableResult
    func whenDurable(_ offset: Int64, _ callback: @escaping DurabilityCallback) -> Bool {
        let now: Result<LogPosition, LogError>? = state.withLock { state in
            if offset < state.readableOffset { return .success(LogPosition(partition: index, offset: offset)) }
            if let failure = state.failure { return .failure(failure) }
            let slot = state.waiters.firstIndex { $0.offset > offset } ?? state.waiters.endIndex
            state.waiters.insert((offset, callback), at: slot)
            return nil
        }
        guard let now else { return true }
        callback(now)
        return false
    }

    /// Fails every waiter and every later append: a write or sync failed, so what is in memory may not
    /// be on disk.
    func fail(_ error: LogError) {
        let waiting = state.withLock { state in
            state.failure = state.failure ?? error
            defer { state.waiters.removeAll() }
            return state.waiters.map(\.callback)
        }
        for callback in waiting { callback(.failure(error)) }
    }

    // MARK: Reading

    /// The first offset still in the log and the offset after the last readable one.
    var bounds: (start: Int64, end: Int64) {
        state.withLock { ($0.segments.first!.baseOffset, $0.readableOffset) }
    }

    /// Damaged records a read found and passed over.
    struct Damage: Equatable {
        let file: String
        let position: Int
        let reason: String
        /// The offsets passed over: the damaged records (and, when the damage hid where records start, the
        /// whole ones up to the next found).
        let offsets: Range<Int64>
    }

    /// Readable records from `offset` on (from the first retained one, if `offset` was deleted), at most
    /// `maximumRecords` and about `maximumBytes` (at least one record). Damaged records (a flipped bit, a
    /// bad sector) end a read that already has records; one that starts at them passes over them to the
    /// next intact record and tells `damaged`, so that no reader is stuck on them for ever.
    func read(from offset: Int64, maximumRecords: Int, maximumBytes: Int, damaged: (Damage) -> Void = { _ in })
        throws(LogError) -> [StoredRecord]
    {
        guard maximumRecords > 0, maximumBytes > 0 else { return [] }
        var records: [StoredRecord] = []
        var bytes = 0
        try visit(from: offset, passOver: { records.isEmpty }, damaged: damaged) { recordOffset, timestamp, data in
            records.append(
                StoredRecord(partition: index, offset: recordOffset, timestamp: timestamp, bytes: Array(data)))
            bytes += data.count
            return records.count < maximumRecords && bytes < maximumBytes
        }
        return records
    }

    /// Calls `body` with the offset, timestamp and event bytes (in place, valid during the call) of each
    /// readable record from `offset` on (from the first retained one, if `offset` was deleted), until it
    /// returns `false`. At a damaged record (a flipped bit, a bad sector) `passOver` decides: the visit
    /// passes over it to the next intact record and tells `damaged`, or ends there.
    func visit(
        from offset: Int64, passOver: () -> Bool, damaged: (Damage) -> Void,
        _ body: (_ offset: Int64, _ timestamp: Int64, UnsafeRawBufferPointer) throws(LogError) -> Bool
    ) throws(LogError) {
        let (segments, readable) = state.withLock { ($0.segments, $0.readableOffset) }
        let offset = max(offset, segments.first!.baseOffset)
        for segment in segments {
            guard offset < readable else { return }
            let (next, scan, end) = state.withLock { _ in
                (segment.nextOffset, segment.position(scanningFor: offset), segment.written)
            }
            guard next > offset else { continue }
            var stopped = false
            let ended = try RecordReader.read(
                segment.file, from: scan.position, to: end, after: scan.offset - 1, below: next,
                passOver: { _, _ in passOver() },
                passedOver: { at, reason, offsets, _ in
                    damaged(Damage(file: segment.file.path, position: at, reason: reason, offsets: offsets))
                }
            ) { recordOffset, timestamp, _, _, data throws(LogError) in
                guard recordOffset < readable else {
                    stopped = true
                    return false
                }
                guard recordOffset >= offset else { return true }
                stopped = try !body(recordOffset, timestamp, data)
                return !stopped
            }
            if stopped { return }
            // Damage not passed over: the visit ends at it.
            if case .damaged = ended, !passOver() { return }
        }
    }

    /// The offset of the first readable record with a timestamp at or after `timestamp` (the end if none).
    func offset(atOrAfter timestamp: Int64) throws(LogError) -> Int64 {
        let (segments, readable) = state.withLock { ($0.segments, $0.readableOffset) }
        for segment in segments {
            let (largest, scan, end, next) = state.withLock { _ in
                (
                    segment.largestTimestamp,
                    segment.position(scanningFor: segment.offset(scanningForTime: timestamp)),
                    segment.written, segment.nextOffset
                )
            }
            guard let largest, largest >= timestamp else { continue }
            var found: Int64?
            // Damaged records are passed over, as ``read(from:maximumRecords:maximumBytes:damaged:)`` does.
            _ = try RecordReader.read(
                segment.file, from: scan.position, to: end, after: scan.offset - 1, below: next,
                passOver: { _, _ in true }, passedOver: { _, _, _, _ in }
            ) { offset, recordTimestamp, _, _, _ throws(LogError) in
                guard offset < readable else { return false }
                if recordTimestamp >= timestamp { found = offset }
                return found == nil
            }
            if let found { return found }
        }
        return readable
    }

    // MARK: Recovery

    /// Opens the segments of `directory` in offset order. Sealed segments whose index files describe them
    /// are trusted; any other segment, and always the last (active) one, is scanned record by record: its
    /// index is rebuilt. In the active segment, at the first torn or corrupt record (a bad length, a checksum
    /// that does not match, an offset out of sequence) the file is truncated, keeping every whole record
    /// before it; in a sealed one, damage is passed over and reported, and nothing is cut.
    private static func recover(directory: String, configuration: LogConfiguration, report: inout RecoveryReport)
        throws(LogError) -> [Segment]
    {
        let bases = try LogFile.names(in: directory).compactMap(Segment.baseOffset(ofFileName:)).sorted()
        guard !bases.isEmpty else {
            let segment = try Segment(directory: directory, baseOffset: 0, create: true)
            try LogFile.syncDirectory(directory)
            return [segment]
        }
        var segments: [Segment] = []
        for (position, base) in bases.enumerated() {
            let segment = try Segment(directory: directory, baseOffset: base, create: false)
            let fileSize = try segment.file.size()
            let isActive = position == bases.count - 1
            if !isActive && segment.loadIndexFiles(fileSize: fileSize) {
                report.segmentsTrusted += 1
                segment.allocated = fileSize
                segment.written = segment.size
                segments.append(segment)
                continue
            }
            var expected = base
            // A sealed segment was whole when sealed: damage inside it is not a torn tail. The records after
            // it are found again and kept; only the damaged ones are reported unreadable.
            let ended = try RecordReader.read(
                segment.file, from: 0, to: fileSize, after: base - 1, below: isActive ? .max : bases[position + 1],
                passOver: { _, _ in !isActive },
                passedOver: { at, reason, offsets, resumes in
                    // Damage that runs to the end is reported below (zeros there are no damage).
                    guard resumes else { return }
                    report.damagedRecords.append(
                        RecoveryReport.DamagedRecords(
                            file: segment.file.path, position: at, offsets: offsets, reason: reason))
                    expected = offsets.upperBound
                    // The record found again gets an index entry: a read of it starts there, past the damage.
                    segment.bytesSinceIndex = configuration.indexIntervalBytes
                }
            ) { offset, timestamp, recordPosition, size, _ throws(LogError) in
                guard offset == expected else { return false }
                segment.noteRecord(
                    offset: offset, timestamp: timestamp, position: recordPosition, size: size,
                    interval: configuration.indexIntervalBytes)
                expected += 1
                return true
            }
            report.segmentsScanned += 1
            report.recordsScanned += Int(segment.nextOffset - base)
            if segment.size < fileSize, try zeros(in: segment.file, from: segment.size, to: fileSize) {
                // Preallocated and not written yet (the broker stopped without closing the log): no damage.
                // The active segment keeps them for its next appends; a sealed one keeps no zeros.
                if !isActive {
                    try segment.file.truncate(to: segment.size)
                    try segment.file.sync()
                }
            } else if segment.size < fileSize {
                let reason: String
                switch ended {
                case .damaged(_, let why): reason = why
                case .finished: reason = "offset out of sequence"
                }
                if isActive {
                    report.truncations.append(
                        RecoveryReport.Truncation(
                            file: segment.file.path, position: segment.size, bytesRemoved: fileSize - segment.size,
                            reason: reason))
                    try segment.file.truncate(to: segment.size)
                    try segment.file.sync()
                } else {
                    // Damage that runs to a sealed segment's end: its records were synced before it was
                    // sealed, so they are reported lost, and the bytes kept for whoever repairs the file (its
                    // index files, written below, do not match its size: every start scans it and says so).
                    report.damagedRecords.append(
                        RecoveryReport.DamagedRecords(
                            file: segment.file.path, position: segment.size,
                            // Records at or past the next segment's base (overlapping files, a restored
                            // copy) leave no offsets lost here, and must not make an inverted range.
                            offsets: expected..<max(expected, bases[position + 1]), reason: reason))
                }
            }
            segment.allocated = try segment.file.size()
            segment.written = segment.size
            if isActive {
                try segment.removeIndexFiles()
            } else {
                try segment.writeIndexFiles()
                report.indexesRebuilt += 1
            }
            segments.append(segment)
        }
        // Each segment starts where the one before ended: offsets missing in between are records of a
        // segment file that is gone (deleted, a directory restored without it), unless recovery reported
        // them damaged already.
        for (earlier, later) in zip(segments, segments.dropFirst()) where earlier.nextOffset < later.baseOffset {
            let reported = report.damagedRecords.contains {
                $0.file == earlier.file.path && $0.offsets.upperBound == later.baseOffset
            }
            if !reported {
                report.missingRecords.append(
                    RecoveryReport.MissingRecords(
                        directory: directory, offsets: earlier.nextOffset..<later.baseOffset))
            }
        }
        return segments
    }

    /// Appends again the records of `records` (a journal entry: whole records, back to back) that this
    /// partition lacks, before the log's writer starts: those from its next offset on; those before are
    /// here already. Returns how many were appended, and, when a record's offset is past the next one
    /// (records missing in between, which a journal never leaves), the first offset missing: nothing from
    /// there on is appended.
    func replay(_ records: UnsafeRawBufferPointer) -> (appended: Int, missing: Int64?) {
        var appended = 0
        var rest = records
        while !rest.isEmpty, case .record(let offset, let timestamp, let size) = Record.parse(rest) {
            let next = state.withLock { $0.nextOffset }
            if offset > next { return (appended, next) }
            if offset == next {
                let data = Array(UnsafeRawBufferPointer(rebasing: rest[Record.headerSize..<size]))
                // A partition that failed refuses appends; the caller finds the failure when it writes.
                if (try? append(timestamp: timestamp, body: { _, _ in .bytes(data) }, whenDurable: nil)) != nil {
                    appended += 1
                }
            }
            rest = UnsafeRawBufferPointer(rebasing: rest[size...])
        }
        return (appended, nil)
    }

    /// Whether the bytes of `file` from `start` to `end` are all zero.
    private static func zeros(in file: LogFile, from start: Int, to end: Int) throws(LogError) -> Bool {
        var chunk: [UInt8] = []
        var position = start
        while position < end {
            chunk.removeAll(keepingCapacity: true)
            try file.read(into: &chunk, count: min(end - position, 1 << 16), at: position)
            guard !chunk.isEmpty else { return false }
            guard chunk.allSatisfy({ $0 == 0 }) else { return false }
            position += chunk.count
        }
        return true
    }

    // MARK: Syncing, retention, closing

    /// Cuts the zeros written ahead of the active segment's records (the log is closing): a closed log's
    /// files hold records only. Runs on the writer thread.
    func trimPreallocation() throws(LogError) {
        let active = state.withLock { $0.segments.last! }
        let size = state.withLock { _ in active.size }
        guard active.allocated > size else { return }
        try active.file.truncate(to: size)
        active.allocated = size
    }

    /// Every segment, for a full sync (`maintenance.data` flush, closing).
    var segments: [Segment] { state.withLock { $0.segments } }

    /// Deletes whole sealed segments (never the active one) whose newest record is older than
    /// `olderThan`, then the oldest while the partition is larger than `maximumBytes`. Returns the
    /// segments and bytes deleted.
    func applyRetention(olderThan: Int64?, maximumBytes: Int?) throws(LogError) -> (segments: Int, bytes: Int) {
        try deleteOldestSegments { oldest, total in
            let tooOld = olderThan.map { limit in (oldest.largestTimestamp ?? Int64.min) < limit } ?? false
            let tooBig = maximumBytes.map { total > $0 } ?? false
            return tooOld || tooBig
        }
    }

    /// Deletes whole sealed segments (never the active one) whose every record is before `offset`: records
    /// their only reader is done with (a consumer group's replayed or purged dead letters).
    func deleteSegments(before offset: Int64) throws(LogError) -> (segments: Int, bytes: Int) {
        try deleteOldestSegments { oldest, _ in oldest.nextOffset <= offset }
    }

    /// Deletes sealed segments, oldest first, while `condition` holds for the oldest (given the partition's
    /// total size); the active segment is never deleted, so offsets never restart.
    private func deleteOldestSegments(while condition: (Segment, Int) -> Bool) throws(LogError) -> (
        segments: Int, bytes: Int
    ) {
        let deleted = state.withLock { state -> [Segment] in
            var deleted: [Segment] = []
            var total = state.segments.reduce(0) { $0 + $1.size }
            while state.segments.count > 1, condition(state.segments[0], total) {
                total -= state.segments[0].size
                deleted.append(state.segments.removeFirst())
            }
            return deleted
        }
        for segment in deleted {
            try LogFile.remove(segment.file.path)
            try segment.removeIndexFiles()
        }
        if !deleted.isEmpty { try LogFile.syncDirectory(directory) }
        return (deleted.count, deleted.reduce(0) { $0 + $1.size })
    }
}
