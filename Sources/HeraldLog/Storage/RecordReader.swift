/// Reads the records of a segment file in order, a megabyte at a time.
struct RecordReader {
    /// How a read ended.
    enum End: Equatable {
        /// At `end`, or where `visit` asked to stop.
        case finished
        /// At a record that is torn (runs past `end`) or corrupt, starting at `position`.
        case damaged(position: Int, reason: String)
    }

    private static let chunkSize = 1 << 20

    /// Calls `visit` with the offset, timestamp, position, size and event bytes of each whole record from
    /// `position` up to `end`, until it returns `false`.
    static func read(
        _ file: LogFile, from position: Int, to end: Int,
        _ visit: (_ offset: Int64, _ timestamp: Int64, _ position: Int, _ size: Int, UnsafeRawBufferPointer)
            throws(LogError) -> Bool
    ) throws(LogError) -> End {
        // One buffer for the whole read, filled straight by `pread`: a megabyte zeroed and copied per chunk
        // was a tenth of the time to read a log back at start.
        var buffer = allocate(max(1, min(chunkSize, end - position)))
        defer { buffer.deallocate() }
        var chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<0])
        var chunkStart = position
        var consumed = 0
        while chunkStart + consumed < end {
            if consumed == chunk.count {
                chunkStart += consumed
                consumed = 0
                let count = try file.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(end - chunkStart, buffer.count)]),
                    at: chunkStart)
                if count == 0 { return .damaged(position: chunkStart, reason: "the file ends early") }
                chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            }
            switch Record.parse(UnsafeRawBufferPointer(rebasing: chunk[consumed...])) {
            case .record(let offset, let timestamp, let size):
                let data = UnsafeRawBufferPointer(rebasing: chunk[(consumed + Record.headerSize)..<(consumed + size)])
                let keepGoing = try visit(offset, timestamp, chunkStart + consumed, size, data)
                consumed += size
                if !keepGoing { return .finished }
            case .incomplete(let needed):
                let recordStart = chunkStart + consumed
                guard recordStart + needed <= end else {
                    return .damaged(
                        position: recordStart, reason: "a torn record (\(end - recordStart) of \(needed) bytes)")
                }
                // The record continues past this chunk: read again from its start, into a buffer that holds it.
                if needed > buffer.count {
                    buffer.deallocate()
                    buffer = allocate(needed)
                }
                chunkStart = recordStart
                consumed = 0
                let count = try file.read(
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(end - chunkStart, buffer.count)]),
                    at: chunkStart)
                guard count >= needed else { return .damaged(position: recordStart, reason: "the file ends early") }
                chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            case .corrupt(let reason):
                return .damaged(position: chunkStart + consumed, reason: reason)
            }
        }
        return .finished
    }
}

extension RecordReader {
    /// A read buffer of `count` bytes, its memory bound to `UInt8` as the record bytes' readers take it
    /// (`assumingMemoryBound(to: UInt8.self)`).
    private static func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer<UInt8>.allocate(capacity: count))
    }
}

extension RecordReader {
    /// Reads as ``read(_:from:to:_:)`` does, going on past damaged records in the middle of a segment (a
    /// flipped bit, a bad sector): at each, `passOver` decides with where it is and why; when it allows, the
    /// next intact record is looked for (``nextRecord(_:after:to:offsetAbove:below:)``), `passedOver` is told
    /// the offsets passed over (up to `limit` when none follows, `resumes` false) and reading goes on there.
    /// `first` is the offset before the first record at `position`, `limit` the offset no record of the
    /// segment reaches. Ends `.damaged` when passing over was refused or nothing intact followed.
    static func read(
        _ file: LogFile, from position: Int, to end: Int, after first: Int64, below limit: Int64,
        passOver: (_ position: Int, _ reason: String) -> Bool,
        passedOver: (_ position: Int, _ reason: String, _ offsets: Range<Int64>, _ resumes: Bool) -> Void,
        _ visit: (_ offset: Int64, _ timestamp: Int64, _ position: Int, _ size: Int, UnsafeRawBufferPointer)
            throws(LogError) -> Bool
    ) throws(LogError) -> End {
        var start = position
        // The offset of the last record read: where a damaged one's range starts.
        var seen = first
        while true {
            let ended = try read(file, from: start, to: end) {
                offset, timestamp, recordPosition, size, data throws(LogError) in
                seen = offset
                return try visit(offset, timestamp, recordPosition, size, data)
            }
            guard case .damaged(let at, let reason) = ended, passOver(at, reason) else { return ended }
            let found = try nextRecord(file, after: at, to: end, offsetAbove: seen, below: limit)
            passedOver(at, reason, (seen + 1)..<max(seen + 1, found?.offset ?? limit), found != nil)
            guard let found else { return ended }
            start = found.position
            seen = found.offset - 1
        }
    }

    /// The first whole, intact record after the damaged one at `position` whose offset is above `after` and
    /// below `before`: where reading can go on past damage in the middle of a segment (a flipped bit, a bad
    /// sector) instead of losing every record after it. Tried first where the damaged record's own length
    /// says it ends — taken only if the record there is the next one (`after + 2`: a damaged length can point
    /// past intact records) — then byte by byte; a candidate is a record only if its offset is in range and
    /// its CRC-32C matches, so bytes of an event are not taken for one. `nil` when none is left before `end`.
    /// The scan reads a megabyte at a time, and a candidate's whole record only for its check: passing over
    /// damage costs what it reads, not the rest of the segment.
    static func nextRecord(
        _ file: LogFile, after position: Int, to end: Int, offsetAbove after: Int64, below before: Int64
    ) throws(LogError) -> (position: Int, offset: Int64)? {
        guard position < end else { return nil }
        /// The offset of the intact record at `start` in the file, if one is there and its offset in range.
        func record(at start: Int) throws(LogError) -> Int64? {
            guard start + Record.headerSize <= end else { return nil }
            var header: [UInt8] = []
            try file.read(into: &header, count: Record.headerSize, at: start)
            // A file shorter than `end` (cut from outside) has no record there.
            guard header.count == Record.headerSize else { return nil }
            let length = header.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            guard length >= 20, length - 20 <= Record.maximumDataSize, start + 4 + length <= end else { return nil }
            guard let offset = header.withUnsafeBytes({ Self.offset(in: $0, at: 0, above: after, below: before) })
            else { return nil }
            var bytes: [UInt8] = []
            try file.read(into: &bytes, count: 4 + length, at: start)
            let parsed = bytes.withUnsafeBytes { Record.parse($0) }
            guard case .record(offset, _, _) = parsed else { return nil }
            return offset
        }
        var lengthBytes: [UInt8] = []
        try file.read(into: &lengthBytes, count: min(4, end - position), at: position)
        if lengthBytes.count == 4 {
            let length = lengthBytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            if length >= 20, let offset = try record(at: position + 4 + length), offset == after + 2 {
                return (position + 4 + length, offset)
            }
        }
        // Chunks overlap by a header, so that every start is looked at once with its whole header.
        var chunkStart = position + 1
        var chunk: [UInt8] = []
        while chunkStart + Record.headerSize <= end {
            chunk.removeAll(keepingCapacity: true)
            try file.read(into: &chunk, count: min(end - chunkStart, chunkSize + Record.headerSize), at: chunkStart)
            let starts = min(chunkSize, chunk.count - Record.headerSize + 1)
            var index = 0
            while index < starts {
                // The next start whose offset field is in range, then the check of its whole record.
                index = chunk.withUnsafeBytes { bytes in
                    var candidate = index
                    while candidate < starts, Self.offset(in: bytes, at: candidate, above: after, below: before) == nil
                    {
                        candidate += 1
                    }
                    return candidate
                }
                if index < starts, let offset = try record(at: chunkStart + index) {
                    return (chunkStart + index, offset)
                }
                index += 1
            }
            chunkStart += chunkSize
        }
        return nil
    }

    /// The offset field of a record header at `start` in `bytes`, if it is above `after` and below `before`.
    private static func offset(in bytes: UnsafeRawBufferPointer, at start: Int, above after: Int64, below before: Int64)
        -> Int64?
    {
        let offset = Int64(
            bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self)))
        return offset > after && offset < before ? offset : nil
    }
}
