import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A WebSocket client on a blocking TCP socket that writes and reads frames byte for byte (RFC 6455 §5.2),
/// so that tests can send what a framework client never would — fragments, control frames, oversized or
/// binary messages — and see exactly what the broker answers. Run it with ``onOwnThread(_:)``, one thread at
/// a time (hence `@unchecked Sendable`).
final class RawWebSocket: @unchecked Sendable {
    enum Opcode: UInt8 {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    struct Frame: Equatable {
        let opcode: UInt8
        let payload: [UInt8]
        var text: String { String(decoding: payload, as: UTF8.self) }
        /// A `close` frame's status code.
        var closeCode: Int? { payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil }
    }

    private let descriptor: Int32
    private var received: [UInt8] = []

    /// Connects to `address` (`host:port`) and upgrades `path`; throws unless the answer is 101.
    init(address: String, path: String) throws {
        let colon = address.lastIndex(of: ":")!
        let port = UInt16(address[address.index(after: colon)...])!
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        socketAddress.sin_addr.s_addr = inet_addr(String(address[..<colon]))
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw PeerError("\(address): cannot connect (errno \(errno))") }
        try write(
            Array(
                ("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").utf8))
        while true {
            if let end = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self)
                received.removeSubrange(..<end.upperBound)
                guard head.hasPrefix("HTTP/1.1 101") else { throw PeerError("not upgraded: \(head)") }
                return
            }
            guard try fill() else { throw PeerError("closed during the upgrade") }
        }
    }

    deinit { close(descriptor) }

    /// Sends one frame, masked as a client must (RFC 6455 §5.3) unless `masked` is `false`.
    func send(_ opcode: Opcode, _ payload: [UInt8], fin: Bool = true, masked: Bool = true) throws {
        let maskBit: UInt8 = masked ? 0x80 : 0
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode.rawValue]
        if payload.count <= 125 {
            frame.append(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            frame += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            frame.append(maskBit | 127)
            for index in 0..<8 { frame.append(UInt8(truncatingIfNeeded: UInt64(payload.count) >> (56 - 8 * index))) }
        }
        guard masked else { return try write(frame + payload) }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        try write(frame)
    }

    /// Sends bytes as they are (a frame built by hand).
    func send(raw bytes: [UInt8]) throws {
        try write(bytes)
    }

    func send(text: String, fin: Bool = true) throws {
        try send(.text, Array(text.utf8), fin: fin)
    }

    /// The next frame; `nil` when the broker closed the connection.
    func receive() throws -> Frame? {
        while true {
            if let frame = parse() { return frame }
            guard try fill() else { return nil }
        }
    }

    /// The next frame that is not a ping.
    func receiveSkippingPings() throws -> Frame? {
        while let frame = try receive() {
            if frame.opcode != Opcode.ping.rawValue { return frame }
        }
        return nil
    }

    private func parse() -> Frame? {
        guard received.count >= 2 else { return nil }
        let opcode = received[0] & 0x0F
        var length = Int(received[1] & 0x7F)
        var start = 2
        if length == 126 {
            guard received.count >= 4 else { return nil }
            length = Int(received[2]) << 8 | Int(received[3])
            start = 4
        } else if length == 127 {
            guard received.count >= 10 else { return nil }
            length = received[2..<10].reduce(0) { $0 << 8 | Int($1) }
            start = 10
        }
        guard received.count >= start + length else { return nil }
        let payload = Array(received[start..<(start + length)])
        received.removeSubrange(..<(start + length))
        return Frame(opcode: opcode, payload: payload)
    }

    /// Reads what is there; `false` at the end of the stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count > 0 {
                received.append(contentsOf: chunk[0..<count])
                return true
            }
            if count == 0 || errno == ECONNRESET { return false }
            if errno == EINTR { continue }
            throw PeerError("read: errno \(errno)")
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        try sendAll(bytes, to: descriptor)
    }
}
