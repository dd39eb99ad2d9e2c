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
        var chunk: [UInt8] = []
        var chunkStart = position
        var consumed = 0
        while chunkStart + consumed < end {
            if consumed == chunk.count || chunk.isEmpty {
                chunkStart += consumed
                consumed = 0
                chunk.removeAll(keepingCapacity: true)
                try file.read(into: &chunk, count: min(end - chunkStart, chunkSize), at: chunkStart)
                if chunk.isEmpty { return .damaged(position: chunkStart, reason: "the file ends early") }
            }
            let parsed = chunk.withUnsafeBytes { Record.parse(UnsafeRawBufferPointer(rebasing: $0[consumed...])) }
            switch parsed {
            case .record(let offset, let timestamp, let size):
                let keepGoing = try chunk.withUnsafeBytes { buffer in
                    Result { () throws(LogError) -> Bool in
                        try visit(
                            offset, timestamp, chunkStart + consumed, size,
                            UnsafeRawBufferPointer(rebasing: buffer[(consumed + Record.headerSize)..<(consumed + size)])
                        )
                    }
                }.get()
                consumed += size
                if !keepGoing { return .finished }
            case .incomplete(let needed):
                let recordStart = chunkStart + consumed
                guard recordStart + needed <= end else {
                    return .damaged(
                        position: recordStart, reason: "a torn record (\(end - recordStart) of \(needed) bytes)")
                }
                // The record continues past this chunk: read again from its start, big enough to hold it.
                chunkStart = recordStart
                consumed = 0
                chunk.removeAll(keepingCapacity: true)
                try file.read(into: &chunk, count: min(end - chunkStart, max(needed, chunkSize)), at: chunkStart)
                guard chunk.count >= needed else {
                    return .damaged(position: recordStart, reason: "the file ends early")
                }
            case .corrupt(let reason):
                return .damaged(position: chunkStart + consumed, reason: reason)
            }
        }
        return .finished
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
            passedOver(at, reason, (seen + 1)..<(found?.offset ?? limit), found != nil)
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
    static func nextRecord(
        _ file: LogFile, after position: Int, to end: Int, offsetAbove after: Int64, below before: Int64
    ) throws(LogError) -> (position: Int, offset: Int64)? {
        guard position < end else { return nil }
        var bytes: [UInt8] = []
        try file.read(into: &bytes, count: end - position, at: position)
        return bytes.withUnsafeBytes { buffer -> (position: Int, offset: Int64)? in
            func record(at start: Int) -> Int64? {
                guard start + Record.headerSize <= buffer.count else { return nil }
                let offset = Int64(
                    bitPattern: UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self)))
                guard offset > after, offset < before else { return nil }
                guard case .record(offset, _, _) = Record.parse(UnsafeRawBufferPointer(rebasing: buffer[start...]))
                else { return nil }
                return offset
            }
            if buffer.count >= 4 {
                let length = Int(UInt32(littleEndian: buffer.loadUnaligned(as: UInt32.self)))
                if length >= 20, let offset = record(at: 4 + length), offset == after + 2 {
                    return (position + 4 + length, offset)
                }
            }
            var start = 1
            while start + Record.headerSize <= buffer.count {
                if let offset = record(at: start) { return (position + start, offset) }
                start += 1
            }
            return nil
        }
    }
}
