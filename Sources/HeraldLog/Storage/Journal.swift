/// The write-ahead journal of the `batch` fsync policy (docs/storage.md, "The journal"): one file that every
/// round of the writer appends the records of all its partitions to, and the only file a round syncs. The
/// partitions' segments get the same records, written but not synced; a **checkpoint** syncs them all
/// when the journal is full (and at a flush or close), after which the journal starts over. At open, the
/// records of the journal's current generation that a partition lacks (lost with the page cache) are
/// written to it again.
///
/// The file grows by zeros written ahead of its entries, 1 MiB at a time, up to its capacity, and keeps that
/// size when it starts over: once grown, a sync never has to write its length. Little-endian, as the
/// segments:
///
/// | bytes | field |
/// | --- | --- |
/// | 8 | header: `HJOURNL1` |
/// | 8 | the generation |
/// | 4 | CRC-32C of the 16 bytes before |
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
/// after it are older generations' (or zeros). Only the writer thread uses a journal, after the log opened.
final class Journal: @unchecked Sendable {
    // Unchecked `Sendable`: used by one thread at a time, the log's opener and then its writer thread.
    static let fileName = "journal"
    static let headerSize = 4096
    static let entryHeaderSize = 24
    private static let magic: [UInt8] = Array("HJOURNL1".utf8)

    let file: LogFile
    /// Where entries must end.
    let capacity: Int
    /// The file's size: zeros are written ahead of the entries (``growth`` at a time) up to ``capacity``.
    private var allocated: Int
    static let growth = 1 << 20
    private(set) var generation: UInt64
    /// Whether the header was whole: otherwise no entry is replayed.
    private var isReplayable = true
    /// Where the next entry goes.
    private var position = Journal.headerSize
    /// The round's entries, written by ``commit()``.
    private var pending: [UInt8] = []

    /// Opens the journal in `directory`, creating it (a header, generation 0) if needed; entries may take
    /// `capacity` bytes.
    init(directory: String, capacity: Int) throws(LogError) {
        let path = "\(directory)/\(Self.fileName)"
        let exists = LogFile.exists(path)
        file = try LogFile(path: path, create: true)
        self.capacity = max(capacity, Self.headerSize * 2)
        if exists, try file.size() >= Self.headerSize {
            var header: [UInt8] = []
            try file.read(into: &header, count: 20, at: 0)
            allocated = try file.size()
            if let generation = Self.generation(ofHeader: header) {
                self.generation = generation
            } else {
                // A header that is not whole was being written after a checkpoint (or when the file was
                // made): nothing in the file is needed. A generation no entry in it can have makes sure
                // that none is replayed, now or after later restarts.
                generation = UInt64.random(in: (1 << 40)...(1 << 62))
                isReplayable = false
            }
        } else {
            generation = 0
            allocated = Self.headerSize
            try file.write(Self.header(generation: 0) + [UInt8](repeating: 0, count: Self.headerSize - 20), at: 0)
            try file.sync()
            try LogFile.syncDirectory(directory)
        }
    }

    private static func header(generation: UInt64) -> [UInt8] {
        var bytes = magic
        withUnsafeBytes(of: generation.littleEndian) { bytes.append(contentsOf: $0) }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// The generation a header names, or `nil` when it is not a journal header.
    private static func generation(ofHeader header: [UInt8]) -> UInt64? {
        guard header.count >= 20, Array(header[0..<8]) == magic else { return nil }
        return header.withUnsafeBytes { bytes -> UInt64? in
            let crc = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
            guard crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<16])) else { return nil }
            return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    // MARK: Replaying

    /// Calls `visit` with each entry of the current generation, in the order written: its partition and its
    /// records. Returns how many bytes of entries there were.
    @discardableResult
    func replay(_ visit: (_ partition: Int, _ records: UnsafeRawBufferPointer) throws(LogError) -> Void)
        throws(LogError) -> Int
    {
        guard isReplayable else { return 0 }
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
        return at - Self.headerSize
    }

    // MARK: Writing

    /// Adds `records`, the round's records of `partition`, to what ``commit()`` writes.
    func add(partition: Int, records: UnsafeRawBufferPointer) {
        let start = pending.count
        append(UInt32(20 + records.count))
        append(UInt32(0))
        append(generation)
        append(UInt32(partition))
        append(UInt32(0))
        pending.append(contentsOf: records)
        let crc = pending.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + 8)...])) }
        withUnsafeBytes(of: crc.littleEndian) { crcBytes in
            for index in 0..<4 { pending[start + 4 + index] = crcBytes[index] }
        }
    }

    private func append<Integer: FixedWidthInteger>(_ value: Integer) {
        withUnsafeBytes(of: value.littleEndian) { pending.append(contentsOf: $0) }
    }

    private static let zeros = [UInt8](repeating: 0, count: growth)

    /// Whether the round's entries fit in what is left of the file.
    var hasRoom: Bool { position + pending.count <= capacity }

    /// Writes the round's entries after the last and syncs the journal: the round is durable.
    func commit() throws(LogError) {
        defer { pending.removeAll(keepingCapacity: pending.capacity <= 4 << 20) }
        guard !pending.isEmpty else { return }
        while allocated < position + pending.count {
            try file.write(Self.zeros, at: allocated)
            allocated += Self.growth
        }
        try file.write(pending, at: position)
        try file.sync()
        position += pending.count
    }

    /// Starts a new generation (after a checkpoint: every partition is synced, so no entry is needed any
    /// more), dropping the round's entries: the next entry goes to the start of the file again.
    func restart() throws(LogError) {
        pending.removeAll(keepingCapacity: pending.capacity <= 4 << 20)
        generation += 1
        try file.write(Self.header(generation: generation), at: 0)
        try file.sync()
        position = Self.headerSize
        isReplayable = true
    }

    /// Drops the round's entries (its records were synced in their segments, but the journal cannot start
    /// over: it still holds records a failed partition may need).
    func discardRound() {
        pending.removeAll(keepingCapacity: pending.capacity <= 4 << 20)
    }

    /// Bytes of entries in the current generation.
    var used: Int { position - Self.headerSize }
}
