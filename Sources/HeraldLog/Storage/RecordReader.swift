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
