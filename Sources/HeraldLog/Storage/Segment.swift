/// One segment of a partition: a file of records (`<base offset>.log`, 20 digits) with its sparse offset
/// index and time index, kept in memory and written next to it (`.index`, `.timeindex`) when the segment
/// is sealed. Its mutable state is guarded by its partition's lock.
final class Segment: @unchecked Sendable {
    // Unchecked `Sendable`: every `var` is read and written under the owning partition's lock; `file` is
    // safe from any thread.

    /// An offset index entry: the record with `offset` starts at `position`.
    struct IndexEntry: Equatable {
        var offset: Int64
        var position: Int
    }

    /// A time index entry: no record before `offset` has a timestamp above `timestamp` (the largest
    /// timestamp so far, so that a clock stepping back never hides later records).
    struct TimeEntry: Equatable {
        var timestamp: Int64
        var offset: Int64
    }

    let baseOffset: Int64
    let file: LogFile
    let directory: String
    /// Bytes of whole records, counting those the writer noted and is about to write.
    var size: Int
    /// Bytes of records written to the file: readers read no further, since the bytes between this and
    /// ``size`` may not be there yet.
    var written = 0
    /// The offset after its last record (`baseOffset` while empty).
    var nextOffset: Int64
    /// The largest record timestamp, `nil` while empty.
    var largestTimestamp: Int64?
    var offsetIndex: [IndexEntry] = []
    var timeIndex: [TimeEntry] = []
    /// Bytes written since the last index entry.
    var bytesSinceIndex = 0
    /// The file's length: ``size`` and the zeros written ahead of the records (``Partition/preallocation``).
    /// Used by the writer thread and recovery only.
    var allocated = 0

    static func name(_ baseOffset: Int64) -> String {
        String(zeroPadded: baseOffset, width: 20)
    }

    static func logPath(_ directory: String, _ baseOffset: Int64) -> String {
        "\(directory)/\(name(baseOffset)).log"
    }

    /// The base offset a segment file name stands for, if it is one.
    static func baseOffset(ofFileName name: String) -> Int64? {
        // Digits only: `Int64` would read a sign (`-0000…1.log`), and a negative base makes no segment.
        guard name.hasSuffix(".log"), name.utf8.count == 24,
            name.utf8.dropLast(4).allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        return Int64(name.dropLast(4))
    }

    init(directory: String, baseOffset: Int64, create: Bool) throws(LogError) {
        self.directory = directory
        self.baseOffset = baseOffset
        file = try LogFile(path: Self.logPath(directory, baseOffset), create: create)
        size = 0
        nextOffset = baseOffset
    }

    var isEmpty: Bool { nextOffset == baseOffset }

    /// Notes a record written at `position`: an index entry for the first record and then every
    /// `interval` bytes.
    func noteRecord(offset: Int64, timestamp: Int64, position: Int, size recordSize: Int, interval: Int) {
        let largest = max(largestTimestamp ?? timestamp, timestamp)
        if offsetIndex.isEmpty || bytesSinceIndex >= interval {
            offsetIndex.append(IndexEntry(offset: offset, position: position))
            timeIndex.append(TimeEntry(timestamp: largest, offset: offset))
            bytesSinceIndex = 0
        }
        bytesSinceIndex += recordSize
        largestTimestamp = largest
        size = position + recordSize
        nextOffset = offset + 1
    }

    /// The position to start scanning from for `offset`: that of the last indexed record at or before it.
    func position(scanningFor offset: Int64) -> (offset: Int64, position: Int) {
        var low = 0
        var high = offsetIndex.count
        while low < high {
            let middle = (low + high) / 2
            if offsetIndex[middle].offset <= offset { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return (baseOffset, 0) }
        let entry = offsetIndex[low - 1]
        return (entry.offset, entry.position)
    }

    /// The offset to start scanning from for the first record with a timestamp at or after `timestamp`.
    func offset(scanningForTime timestamp: Int64) -> Int64 {
        var low = 0
        var high = timeIndex.count
        while low < high {
            let middle = (low + high) / 2
            if timeIndex[middle].timestamp < timestamp { low = middle + 1 } else { high = middle }
        }
        // Entry `low - 1` has a largest timestamp below `timestamp`: every record before it does too.
        return low > 0 ? timeIndex[low - 1].offset : baseOffset
    }

    // MARK: Index files

    private var indexPath: String { "\(directory)/\(Self.name(baseOffset)).index" }
    private var timeIndexPath: String { "\(directory)/\(Self.name(baseOffset)).timeindex" }

    /// Writes the index files of a sealed segment: 12 bytes per offset entry (relative offset `u32`,
    /// position `u64`), 16 per time entry (timestamp `i64`, relative offset `u32`, 4 zero bytes), then a
    /// 16-byte trailer on the time index with the segment's size and next offset, which tells a reader
    /// that the files describe the segment as it is.
    func writeIndexFiles() throws(LogError) {
        var offsets: [UInt8] = []
        offsets.reserveCapacity(offsetIndex.count * 12)
        for entry in offsetIndex {
            offsets.appendLittleEndian(UInt32(entry.offset - baseOffset))
            offsets.appendLittleEndian(UInt64(entry.position))
        }
        var times: [UInt8] = []
        times.reserveCapacity(timeIndex.count * 16 + 16)
        for entry in timeIndex {
            times.appendLittleEndian(UInt64(bitPattern: entry.timestamp))
            times.appendLittleEndian(UInt32(entry.offset - baseOffset))
            times.appendLittleEndian(UInt32(0))
        }
        times.appendLittleEndian(UInt64(size))
        times.appendLittleEndian(UInt64(bitPattern: nextOffset))
        for (path, bytes) in [(indexPath, offsets), (timeIndexPath, times)] {
            try LogFile.remove(path)
            let file = try LogFile(path: path, create: true)
            try file.write(bytes, at: 0)
        }
    }

    /// Loads the index files of a sealed segment whose file is `fileSize` bytes; `false` (nothing
    /// changed) when they are missing, do not describe the segment as it is, or are inconsistent.
    func loadIndexFiles(fileSize: Int) -> Bool {
        guard let offsets = try? Self.contents(of: indexPath), let times = try? Self.contents(of: timeIndexPath),
            offsets.count % 12 == 0, times.count >= 16, (times.count - 16) % 16 == 0
        else { return false }
        let trailer = times.count - 16
        // Unchecked files (not synced, no checksum): a value past `Int.max` is damage, not a trap.
        guard let recordedSize = Int(exactly: times.littleEndian(UInt64.self, at: trailer)) else { return false }
        let recordedNext = Int64(bitPattern: times.littleEndian(UInt64.self, at: trailer + 8))
        guard recordedSize == fileSize, recordedNext >= baseOffset else { return false }
        var loaded: [IndexEntry] = []
        for start in stride(from: 0, to: offsets.count, by: 12) {
            guard let position = Int(exactly: offsets.littleEndian(UInt64.self, at: start + 4)) else { return false }
            let entry = IndexEntry(
                offset: baseOffset + Int64(offsets.littleEndian(UInt32.self, at: start)), position: position)
            if let last = loaded.last, entry.offset <= last.offset || entry.position <= last.position { return false }
            guard entry.offset < recordedNext, entry.position < fileSize else { return false }
            loaded.append(entry)
        }
        var loadedTimes: [TimeEntry] = []
        for start in stride(from: 0, to: trailer, by: 16) {
            let entry = TimeEntry(
                timestamp: Int64(bitPattern: times.littleEndian(UInt64.self, at: start)),
                offset: baseOffset + Int64(times.littleEndian(UInt32.self, at: start + 8)))
            if let last = loadedTimes.last, entry.offset <= last.offset || entry.timestamp < last.timestamp {
                return false
            }
            guard entry.offset < recordedNext else { return false }
            loadedTimes.append(entry)
        }
        guard loaded.isEmpty == (recordedNext == baseOffset), loaded.first?.position ?? 0 == 0 else { return false }
        offsetIndex = loaded
        timeIndex = loadedTimes
        size = fileSize
        nextOffset = recordedNext
        largestTimestamp = loadedTimes.last?.timestamp
        return true
    }

    /// Deletes the index files (a segment that is scanned again, or deleted).
    func removeIndexFiles() throws(LogError) {
        try LogFile.remove(indexPath)
        try LogFile.remove(timeIndexPath)
    }

    private static func contents(of path: String) throws(LogError) -> [UInt8] {
        let file = try LogFile(path: path, create: false)
        var bytes: [UInt8] = []
        try file.read(into: &bytes, count: try file.size(), at: 0)
        return bytes
    }
}

extension String {
    /// `value` in decimal, with leading zeros to `width` digits: file and directory names that sort in
    /// numeric order.
    init(zeroPadded value: some BinaryInteger, width: Int) {
        let digits = String(value)
        self = String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
    }
}
