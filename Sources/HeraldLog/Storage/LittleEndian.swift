/// The byte order of every integer in the log's files (segments, indexes, journals, group state journals):
/// least significant byte first.
extension Array where Element == UInt8 {
    /// Appends `value`'s bytes, least significant first.
    mutating func appendLittleEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// The integer whose bytes start at `start`, least significant first; the bytes must be there.
    func littleEndian<Integer: FixedWidthInteger>(_: Integer.Type, at start: Int) -> Integer {
        withUnsafeBytes { Integer(littleEndian: $0.loadUnaligned(fromByteOffset: start, as: Integer.self)) }
    }
}

extension ArraySlice where Element == UInt8 {
    /// The integer whose bytes start at `index` (an index of the slice, not an offset into it), least
    /// significant first; the bytes must be there.
    func littleEndian<Integer: FixedWidthInteger>(_: Integer.Type, at index: Int) -> Integer {
        withUnsafeBytes {
            Integer(littleEndian: $0.loadUnaligned(fromByteOffset: index - startIndex, as: Integer.self))
        }
    }
}
