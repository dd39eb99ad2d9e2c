import HeraldCore

/// One record of a segment file (docs/storage.md), little-endian:
///
/// | bytes | field |
/// | --- | --- |
/// | 4 | `length`: the bytes after this field (20 + the event's) |
/// | 4 | `crc`: CRC-32C of everything after this field |
/// | 8 | `offset` in the partition |
/// | 8 | `timestamp`: when the broker accepted the event, milliseconds since 1970 |
/// | n | the event's bytes (its stored envelope) |
package enum Record {
    /// The bytes before the event's.
    package static let headerSize = 24
    /// The largest event a record may hold; a larger `length` is corruption, not a record.
    package static let maximumDataSize = 64 << 20

    /// Appends the record of `data` to `buffer`.
    package static func append(
        offset: Int64, timestamp: Int64, data: UnsafeRawBufferPointer, to buffer: inout [UInt8]
    ) {
        // No `reserveCapacity` here: reserving the exact size at each append reallocates the buffer every
        // time (copying all it holds), where appending grows it geometrically.
        let start = buffer.count
        buffer.appendLittleEndian(UInt32(20 + data.count))
        buffer.appendLittleEndian(UInt32(0))
        buffer.appendLittleEndian(UInt64(bitPattern: offset))
        buffer.appendLittleEndian(UInt64(bitPattern: timestamp))
        buffer.append(contentsOf: data)
        let crc = buffer.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + 8)...])) }
        withUnsafeBytes(of: crc.littleEndian) { crcBytes in
            for index in 0..<4 { buffer[start + 4 + index] = crcBytes[index] }
        }
    }

    /// What the bytes at the start of `bytes` hold.
    package enum Parsed: Equatable {
        /// A whole, intact record of `size` bytes.
        case record(offset: Int64, timestamp: Int64, size: Int)
        /// Too few bytes for the record the header announces (or for a header): more may follow, or the
        /// record is torn.
        case incomplete(needed: Int)
        /// Not a record: an impossible length or a checksum that does not match.
        case corrupt(String)
    }

    /// Reads the record at the start of `bytes`.
    package static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        guard bytes.count >= headerSize else { return .incomplete(needed: headerSize) }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)))
        guard length >= 20, length - 20 <= maximumDataSize else { return .corrupt("impossible length \(length)") }
        guard bytes.count >= 4 + length else { return .incomplete(needed: 4 + length) }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[8..<(4 + length)]))
        guard stored == computed else { return .corrupt("checksum mismatch") }
        let offset = Int64(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        let timestamp = Int64(
            bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        return .record(offset: offset, timestamp: timestamp, size: 4 + length)
    }
}

/// An event's bytes as an append gives them to the log: made already, or an envelope whose JSON is made
/// when it is first needed — by the log's writer thread as it frames the record, unless a subscriber's
/// delivery needed it before. Either way its size is known when it is queued.
public enum RecordBody: Sendable {
    case bytes([UInt8])
    case envelope(EventEnvelope)

    /// The event's size in bytes.
    public var size: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .envelope(let envelope): envelope.encodedSize
        }
    }

    /// The event's bytes (for an envelope, its JSON: made now if nothing needed it yet).
    public var bytes: [UInt8] {
        switch self {
        case .bytes(let bytes): bytes
        case .envelope(let envelope): envelope.json
        }
    }
}

/// An event read back from the log.
public struct StoredRecord: Sendable, Equatable {
    /// Its partition.
    public let partition: Int
    /// Its offset in the partition.
    public let offset: Int64
    /// When the broker accepted it, milliseconds since 1970.
    public let timestamp: Int64
    /// Its stored envelope.
    public let bytes: [UInt8]
}

/// Where a record is: its partition and its offset there.
public struct LogPosition: Sendable, Equatable {
    public let partition: Int
    public let offset: Int64

    public init(partition: Int, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

/// Called once a record is durable (with where it is), or with the error that kept it from being.
public typealias DurabilityCallback = @Sendable (Result<LogPosition, LogError>) -> Void
