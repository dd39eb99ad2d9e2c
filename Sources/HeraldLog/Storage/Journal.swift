import Dispatch
import HeraldCore

/// The write-ahead journal of the `batch` fsync policy (docs/storage.md, "The journal"): every round of the
/// writer appends the records of all its partitions to the journal, and the journal is the only file the
/// round syncs. The partitions' segments get the same records, written but not synced, and are synced at a
/// **checkpoint**.
///
/// Two files take turns (``JournalFile``): when the one in use is full, the next round goes to the other,
/// started over with the next generation, while a background thread (`herald-checkpoint`) syncs every
/// partition's active segment; once that is done the full file is needed no more and may be started over in
/// its turn. So a checkpoint holds no round back, unless the second file fills before the first one's
/// checkpoint ends (then the round waits for it). At open, both files' current generations are replayed,
/// the older first, into partitions that lack their records.
///
/// Only the writer thread uses a journal after the log opened; the checkpoint thread only syncs segments.
final class Journal: @unchecked Sendable {
    // Unchecked `Sendable`: used by one thread at a time (the opener, then the writer thread); the
    // checkpoint's state, which the checkpoint thread also touches, is behind `checkpoint`'s lock.
    static let fileNames = ["journal.0", "journal.1"]

    private let files: [JournalFile]
    /// The file rounds go to.
    private var active: Int
    /// The round's entries, built as they are added (each partition's records copied once, behind its
    /// header); their generation and checksum are filled in by ``commit(activeSegments:syncer:)``, once it
    /// knows which file they go to.
    private var pending = PendingEntries()

    struct PendingEntries {
        var bytes: [UInt8] = []
        /// Where each entry starts in `bytes`.
        var starts: [Int] = []
        var isEmpty: Bool { starts.isEmpty }

        mutating func removeAll() {
            bytes.removeAll(keepingCapacity: bytes.capacity <= 4 << 20)
            starts.removeAll(keepingCapacity: true)
        }
    }

    /// A checkpoint running in the background, and how the last one ended.
    private let checkpoint = StateLock(CheckpointState())
    /// Entered as a checkpoint starts, left as it ends: waiting on it waits for exactly the checkpoint that
    /// runs, if any. (A semaphore signalled at each end kept a count for the checkpoints nobody waited for,
    /// and a later wait returned at once while a checkpoint still ran: the file it covered could start over
    /// before its records were synced in their segments.)
    private let checkpointRunning = DispatchGroup()
    private let queue = DispatchQueue(label: "herald-checkpoint")

    private struct CheckpointState {
        /// The file whose records are being synced in their segments: not to be started over before.
        var running: Int?
        /// Why a checkpoint failed: the log must fail (the records of that file may be nowhere else).
        var failure: LogError?
    }

    /// Opens (or creates) the two files in `directory` for the log `logID`; each may hold entries up to
    /// `capacity` bytes.
    init(directory: String, logID: UInt64, capacity: Int) throws(LogError) {
        var files: [JournalFile] = []
        for name in Self.fileNames {
            files.append(try JournalFile(path: "\(directory)/\(name)", logID: logID, capacity: capacity))
        }
        try LogFile.syncDirectory(directory)
        self.files = files
        // Rounds continue in the newer file (after `replay` and `restart`, in a new generation).
        active = files[0].generation >= files[1].generation ? 0 : 1
    }

    /// The files that are not replayed, and why.
    var problems: [String] { files.compactMap(\.problem) }

    /// Whether a journal is in `directory` (a run under `batch` left it).
    static func exists(in directory: String) -> Bool {
        fileNames.contains { LogFile.exists("\(directory)/\($0)") }
    }

    // MARK: Replaying

    /// Calls `visit` with each entry of both files' current generations, the older generation first, in
    /// the order written: its partition and its records.
    func replay(_ visit: (_ partition: Int, _ records: UnsafeRawBufferPointer) throws(LogError) -> Void)
        throws(LogError)
    {
        for file in files.sorted(by: { $0.generation < $1.generation }) {
            try file.replay(visit)
        }
    }

    /// Starts over after the replay (every partition synced): the newer file gets the next generation and
    /// takes the rounds; the other keeps what it holds, needed no more, until its turn.
    func restart() throws(LogError) {
        let newest = files.map(\.generation).max()!
        active = files[0].generation >= files[1].generation ? 0 : 1
        try files[active].restart(generation: newest + 1)
    }

    // MARK: Writing

    /// Adds `records`, the round's records of `partition`, to what ``commit(activeSegments:syncer:)``
    /// writes.
    func add(partition: Int, records: UnsafeRawBufferPointer) {
        pending.starts.append(pending.bytes.count)
        JournalFile.appendEntryHeader(partition: partition, recordBytes: records.count, to: &pending.bytes)
        pending.bytes.append(contentsOf: records)
    }

    /// Makes the round durable: writes its entries after the last ones of the file in use and syncs it. When
    /// they do not fit, the other file takes over (waiting for its own checkpoint to end, if one runs) and
    /// a checkpoint of the full one starts in the background: `activeSegments()`, every partition's active
    /// segment, synced by `syncer`.
    /// Asked on the writer thread as a checkpoint starts: what it makes durable (each partition's written
    /// end), given to ``checkpointed`` once it did (``SyncedEnds``).
    var checkpointing: (() -> [Int64])?
    var checkpointed: (@Sendable ([Int64]) -> Void)?

    func commit(activeSegments: () -> [LogFile], syncer: ParallelSync) throws(LogError) {
        defer { pending.removeAll() }
        if let failure = checkpoint.withLock({ $0.failure }) { throw failure }
        guard !pending.isEmpty else { return }
        let size = pending.bytes.count
        if !files[active].hasRoom(for: size) {
            let full = active
            let next = 1 - active
            try waitForCheckpoint()
            try files[next].restart(generation: files[full].generation + 1)
            active = next
            startCheckpoint(of: full, files: activeSegments(), ends: checkpointing?() ?? [], syncer: syncer)
        }
        try files[active].write(&pending)
    }

    private func startCheckpoint(of file: Int, files segments: [LogFile], ends: [Int64], syncer: ParallelSync) {
        checkpoint.withLock { $0.running = file }
        checkpointRunning.enter()
        let checkpointed = self.checkpointed
        queue.async { [self] in
            let failure = syncer.sync(segments).lazy.compactMap { $0 }.first
            if failure == nil, !ends.isEmpty { checkpointed?(ends) }
            checkpoint.withLock { state in
                state.running = nil
                if let failure { state.failure = state.failure ?? failure }
            }
            checkpointRunning.leave()
        }
    }

    /// Waits until no checkpoint runs; throws how one failed.
    func waitForCheckpoint() throws(LogError) {
        checkpointRunning.wait()
        if let failure = checkpoint.withLock({ $0.failure }) { throw failure }
    }

    /// After a full sync of every partition (a flush, the close): nothing either file holds is needed any
    /// more, and the file in use starts over.
    func startOver() throws(LogError) {
        try waitForCheckpoint()
        guard files[active].used > 0 else { return }
        let newest = files.map(\.generation).max()!
        try files[active].restart(generation: newest + 1)
    }

    /// Drops the round's entries (their records were synced in their segments otherwise).
    func discardRound() {
        pending.removeAll()
    }

    /// Bytes of entries in the file in use.
    var used: Int { files[active].used }

    /// The generations of the two files (for tests).
    var generations: [UInt64] { files.map(\.generation) }
}

/// One file of the journal. Little-endian, as the segments:
///
/// | bytes | field |
/// | --- | --- |
/// | 8 | header: `HJOURNL1` |
/// | 8 | the generation |
/// | 8 | the id of the log it belongs to (`herald-log`'s `id`) |
/// | 4 | CRC-32C of the 24 bytes before |
/// | to 4096 | zeros |
///
/// then entries, back to back from byte 4096, each the records one partition got in one round:
///
/// | bytes | field |
/// | --- | --- |
/// | 4 | `length`: the bytes after this field (20 + the records') |
/// | 4 | `crc`: CRC-32C of everything after this field |
/// | 8 | the generation the entry was written in |
/// | 4 | the partition |
/// | 4 | zero |
/// | n | the records, exactly as in the partition's segment |
///
/// A generation's entries end at the first one that is torn, corrupt or of another generation: the bytes
/// after it are older generations' (or zeros). The file grows by zeros written ahead of its entries, 1 MiB at
/// a time up to its capacity, and keeps that size when it starts over: once grown, a sync never has to write
/// its length.
final class JournalFile {
    static let headerSize = 4096
    static let entryHeaderSize = 24
    static let growth = 1 << 20
    private static let magic: [UInt8] = Array("HJOURNL1".utf8)
    private static let zeros = [UInt8](repeating: 0, count: growth)

    let file: LogFile
    /// Where entries must end.
    let capacity: Int
    /// The file's size: zeros are written ahead of the entries (``growth`` at a time) up to ``capacity``.
    private var allocated: Int
    private(set) var generation: UInt64
    /// The log whose records it holds.
    private let logID: UInt64
    /// Whether the header was whole and of this log: otherwise no entry is replayed.
    private var isReplayable = true
    /// Why it is not replayed, for the recovery report.
    private(set) var problem: String?
    /// Where the next entry goes.
    private var position = JournalFile.headerSize

    /// Generations stay below this: a header naming a larger one is not a header this log wrote.
    private static let generationLimit: UInt64 = 1 << 62

    /// Opens the file at `path` for the log `logID`, creating it (a header, generation 0) if needed.
    init(path: String, logID: UInt64, capacity: Int) throws(LogError) {
        let exists = LogFile.exists(path)
        file = try LogFile(path: path, create: true)
        self.logID = logID
        self.capacity = max(capacity, Self.headerSize * 2)
        if exists, try file.size() >= Self.headerSize {
            var header: [UInt8] = []
            try file.read(into: &header, count: 28, at: 0)
            allocated = try file.size()
            let read = Self.read(header: header)
            if let read, read.logID == logID, read.generation < Self.generationLimit {
                generation = read.generation
            } else {
                // Not replayed: a header that is not whole was being written just after a checkpoint (or
                // when the file was made), and nothing in the file is needed; one of another log (a journal
                // copied from elsewhere) holds none of this log's records. A generation no entry in it can
                // have makes sure that none is replayed, now or after later restarts.
                generation = UInt64.random(in: (1 << 40)...(1 << 61))
                isReplayable = false
                problem =
                    read.map { read in
                        read.logID != logID
                            ? "\(path): written by another log (id \(String(read.logID, radix: 16))), not replayed"
                            : "\(path): generation \(read.generation) is not one this log writes, not replayed"
                    } ?? "\(path): the header is not whole, not replayed"
            }
        } else {
            // A file shorter than its header was cut while its header was written: nothing in it to replay.
            if exists, let size = try? file.size(), size > 0 {
                problem = "\(path): the header is not whole (\(size) bytes), not replayed"
            }
            generation = 0
            allocated = Self.headerSize
            try file.write(
                Self.header(generation: 0, logID: logID) + [UInt8](repeating: 0, count: Self.headerSize - 28), at: 0)
            try file.sync()
        }
    }

    private static func header(generation: UInt64, logID: UInt64) -> [UInt8] {
        var bytes = magic
        bytes.appendLittleEndian(generation)
        bytes.appendLittleEndian(logID)
        bytes.appendLittleEndian(bytes.withUnsafeBytes { CRC32C.checksum($0) })
        return bytes
    }

    /// The generation and log id a header names, or `nil` when it is not a whole journal header.
    private static func read(header: [UInt8]) -> (generation: UInt64, logID: UInt64)? {
        guard header.count >= 28, Array(header[0..<8]) == magic else { return nil }
        return header.withUnsafeBytes { bytes -> (UInt64, UInt64)? in
            let crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
            guard crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<24])) else { return nil }
            return (
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            )
        }
    }

    /// Calls `visit` with each entry of the current generation, in the order written.
    func replay(_ visit: (_ partition: Int, _ records: UnsafeRawBufferPointer) throws(LogError) -> Void)
        throws(LogError)
    {
        guard isReplayable else { return }
        var chunk: [UInt8] = []
        var at = Self.headerSize
        while at + Self.entryHeaderSize <= allocated {
            chunk.removeAll(keepingCapacity: true)
            try file.read(into: &chunk, count: Self.entryHeaderSize, at: at)
            guard chunk.count == Self.entryHeaderSize else { break }
            let length = Int(chunk.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
            guard length >= 20, at + 4 + length <= allocated else { break }
            chunk.removeAll(keepingCapacity: true)
            try file.read(into: &chunk, count: 4 + length, at: at)
            guard chunk.count == 4 + length else { break }
            let intact = chunk.withUnsafeBytes { bytes -> (partition: Int, ok: Bool) in
                let crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let entryGeneration = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                let partition = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
                let ok =
                    entryGeneration == generation
                    && crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[8...]))
                return (partition, ok)
            }
            guard intact.ok else { break }
            try chunk.withUnsafeBytes { bytes in
                Result { () throws(LogError) in
                    try visit(intact.partition, UnsafeRawBufferPointer(rebasing: bytes[Self.entryHeaderSize...]))
                }
            }.get()
            at += 4 + length
        }
    }

    /// Whether `size` more bytes of entries fit.
    func hasRoom(for size: Int) -> Bool { position + size <= capacity }

    /// Appends an entry's header for `recordBytes` bytes of `partition`'s records, its generation and
    /// checksum left zero (``write(_:)`` fills them in).
    static func appendEntryHeader(partition: Int, recordBytes: Int, to bytes: inout [UInt8]) {
        bytes.appendLittleEndian(UInt32(20 + recordBytes))
        bytes.appendLittleEndian(UInt32(0))
        bytes.appendLittleEndian(UInt64(0))
        bytes.appendLittleEndian(UInt32(partition))
        bytes.appendLittleEndian(UInt32(0))
    }

    /// Writes `entries` after the last ones, in this file's generation, and syncs the file.
    func write(_ entries: inout Journal.PendingEntries) throws(LogError) {
        let generation = generation
        entries.bytes.withUnsafeMutableBytes { bytes in
            for (index, start) in entries.starts.enumerated() {
                let end = index + 1 < entries.starts.count ? entries.starts[index + 1] : bytes.count
                bytes.storeBytes(of: generation.littleEndian, toByteOffset: start + 8, as: UInt64.self)
                let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(start + 8)..<end]))
                bytes.storeBytes(of: crc.littleEndian, toByteOffset: start + 4, as: UInt32.self)
            }
        }
        while allocated < position + entries.bytes.count {
            try file.write(Self.zeros, at: allocated)
            allocated += Self.growth
        }
        try file.write(entries.bytes, at: position)
        try file.sync()
        position += entries.bytes.count
    }

    /// Starts the file over in `generation`: its header says so (synced), and entries go to its start again.
    func restart(generation: UInt64) throws(LogError) {
        self.generation = generation
        try file.write(Self.header(generation: generation, logID: logID), at: 0)
        try file.sync()
        position = Self.headerSize
        isReplayable = true
        problem = nil
    }

    /// Bytes of entries in the current generation.
    var used: Int { position - Self.headerSize }
}
