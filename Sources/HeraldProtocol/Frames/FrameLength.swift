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

    /// Checks a length against `1 ≤ N ≤ maximum`; a failure is `frame_too_large`, which closes the
    /// connection.
    package static func validate(_ length: Int, maximum: Int) -> ProtocolError? {
        guard length >= 1, length <= maximum else {
            return ProtocolError(.frameTooLarge, "frame length \(length) is not from 1 to \(maximum)")
        }
        return nil
    }
}
