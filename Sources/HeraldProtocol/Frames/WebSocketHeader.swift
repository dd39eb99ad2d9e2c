/// The header of a WebSocket frame the broker sends (RFC 6455 §5.2): `FIN`, the opcode, and the payload
/// length in 7, 7+16 or 7+64 bits. Frames from a server are never masked. The broker writes its frames as
/// bytes, so that many events go to the socket in one write, as on the IPC socket.
package enum WebSocketHeader {
    /// The opcodes the broker sends.
    package enum Opcode: UInt8 {
        case text = 0x1
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    /// The header's size for a payload of `length` bytes.
    package static func size(_ length: Int) -> Int {
        length <= 125 ? 2 : length <= 0xFFFF ? 4 : 10
    }

    /// Fills in a final text frame's header for the `length` bytes that follow the 4 bytes reserved at
    /// `start`, moving the payload when its header is not 4 bytes long.
    package static func write(_ length: Int, into bytes: inout [UInt8], reservedAt start: Int) {
        let size = size(length)
        if size < 4 {
            bytes.removeSubrange(start..<(start + 4 - size))
        } else if size > 4 {
            bytes.insert(contentsOf: repeatElement(0, count: size - 4), at: start)
        }
        writeHeader(.text, length, into: &bytes, at: start)
    }

    /// A whole control frame (`ping`, `pong`, `close`) with its payload of at most 125 bytes.
    package static func control(_ opcode: Opcode, payload: some Collection<UInt8>) -> [UInt8] {
        precondition(payload.count <= 125, "a control frame's payload is at most 125 bytes")
        var bytes = [UInt8](repeating: 0, count: 2)
        writeHeader(opcode, payload.count, into: &bytes, at: 0)
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// A `close` frame with its status code and a reason (cut to fit 125 bytes).
    package static func close(code: UInt16, reason: String) -> [UInt8] {
        control(.close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8.prefix(123)))
    }

    private static func writeHeader(_ opcode: Opcode, _ length: Int, into bytes: inout [UInt8], at start: Int) {
        bytes[start] = 0x80 | opcode.rawValue
        switch size(length) {
        case 2:
            bytes[start + 1] = UInt8(length)
        case 4:
            bytes[start + 1] = 126
            bytes[start + 2] = UInt8(length >> 8)
            bytes[start + 3] = UInt8(length & 0xFF)
        default:
            bytes[start + 1] = 127
            for index in 0..<8 {
                bytes[start + 2 + index] = UInt8(truncatingIfNeeded: UInt64(length) >> (56 - 8 * index))
            }
        }
    }
}
