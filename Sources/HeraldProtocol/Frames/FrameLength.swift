/// The 4-byte big-endian length that starts every frame, in both directions (PROTOCOL.md §2.1).
package enum FrameLength {
    /// The default and largest frame a broker announces in `welcome`: 1 MiB.
    package static let defaultMaximum = 1_048_576
    /// Room kept in every frame for the `event` frame's header, so a stored envelope of at most
    /// `max_frame − 1024` bytes always fits in one delivery.
    package static let eventHeaderAllowance = 1024

    /// Reads a frame's length from its first four bytes.
    package static func read(_ bytes: some Collection<UInt8>) -> Int? {
        guard bytes.count >= 4 else { return nil }
        return bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
    }

    /// The four bytes that announce a frame of `length` bytes.
    package static func prefix(_ length: Int) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0, 0]
        write(length, into: &bytes, at: 0)
        return bytes
    }

    /// Writes the four bytes that announce a frame of `length` bytes over `bytes[offset..<offset + 4]`,
    /// without allocating (every delivered frame goes through here).
    package static func write(_ length: Int, into bytes: inout [UInt8], at offset: Int) {
        let length = UInt32(length)
        bytes[offset] = UInt8(length >> 24)
        bytes[offset + 1] = UInt8(length >> 16 & 0xFF)
        bytes[offset + 2] = UInt8(length >> 8 & 0xFF)
        bytes[offset + 3] = UInt8(length & 0xFF)
    }

    /// Checks a length against `1 ≤ N ≤ maximum`; a failure is `frame_too_large`, which closes the
    /// connection.
    package static func validate(_ length: Int, maximum: Int) -> ProtocolError? {
        guard length >= 1, length <= maximum else {
            return ProtocolError(.frameTooLarge, "frame length \(length) is not from 1 to \(maximum)")
        }
        return nil
    }
}
