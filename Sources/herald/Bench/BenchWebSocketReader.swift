import CNIOLinux
import Foundation
import Histogram
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The clients of `herald bench ws`: one thread that holds a share of the WebSocket connections in an epoll
/// set and reads whatever arrives — the shape of `Benchmarks/LatencyFloor/fanout.c`'s readers, so that the
/// benchmark measures the broker and not its clients. Frames are parsed in place (no `String` per message,
/// no task per connection), each event's delay is recorded in the thread's own histogram, and the broker's
/// pings are answered.
/// Unchecked `Sendable`: made by the setup, then used by its thread alone until ``run(until:)`` returns.
final class BenchWebSocketReader: @unchecked Sendable {
    /// What a connection has read of a frame not yet complete.
    private struct Pending {
        var bytes: [UInt8] = []
    }

    private let poller: Int32
    private var descriptors: [Int32] = []
    private var pending: [Pending] = []
    private(set) var histogram = Histogram<UInt64>(
        highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    /// Events received, read by the main thread while the run goes on.
    let received = Atomic<Int>(0)
    var connections: Int { descriptors.count }

    init() throws {
        poller = epoll_create1(0)
        guard poller >= 0 else { throw BenchError("epoll_create1: errno \(errno)") }
    }

    deinit {
        for descriptor in descriptors { close(descriptor) }
        close(poller)
    }

    /// Opens a connection to `host:port`, upgrades it on `path` and waits for the broker's `ok` to the
    /// query's subscription (blocking), then adds it to the set.
    func connect(host: String, port: UInt16, path: String) throws {
        let descriptor = try connectTCP(host: host, port: port)
        let request =
            "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try writeAll(descriptor, Array(request.utf8))
        // The response's head, then frames until the subscription's `ok`; what follows it stays pending.
        var bytes: [UInt8] = []
        var head = 0
        while head == 0 {
            try Self.readSome(descriptor, into: &bytes)
            if let found = end(of: Self.headEnd, in: bytes[...]) { head = found }
        }
        guard bytes.starts(with: Array("HTTP/1.1 101".utf8)) else {
            close(descriptor)
            throw BenchError("the upgrade was refused: \(String(decoding: bytes[..<head], as: UTF8.self))")
        }
        bytes.removeFirst(head)
        while true {
            if let (opcode, payload, size) = Self.frame(in: bytes[...]) {
                let isOK = opcode == 1 && payload.starts(with: Array(#"{"op":"ok""#.utf8))
                bytes.removeFirst(size)
                if isOK { break }
                continue
            }
            try Self.readSome(descriptor, into: &bytes)
        }
        guard fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) == 0 else {
            throw BenchError("fcntl: errno \(errno)")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = UInt64(descriptors.count)
        guard epoll_ctl(poller, EPOLL_CTL_ADD, descriptor, &event) == 0 else {
            throw BenchError("epoll_ctl: errno \(errno)")
        }
        descriptors.append(descriptor)
        pending.append(Pending(bytes: bytes))
    }

    /// Reads and records until the run's `stop` is set.
    func run(until run: BenchWebSocket.Run) throws {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
        defer { buffer.deallocate() }
        for index in pending.indices where !pending[index].bytes.isEmpty {
            try consume(index: index, arrived: monotonicNanoseconds())
        }
        while !run.stop.load(ordering: .relaxed) {
            let count = epoll_wait(poller, &events, Int32(events.count), 50)
            if count < 0 {
                if errno == EINTR { continue }
                throw BenchError("epoll_wait: errno \(errno)")
            }
            for item in 0..<Int(count) {
                let index = Int(events[item].data.u64)
                let size = read(descriptors[index], buffer.baseAddress!, buffer.count)
                if size < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                guard size > 0 else { throw BenchError("the broker closed a WebSocket (errno \(errno))") }
                let arrived = monotonicNanoseconds()
                pending[index].bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[..<size]))
                try consume(index: index, arrived: arrived)
                if run.stop.load(ordering: .relaxed) { return }
            }
        }
    }

    /// Records every whole frame connection `index` has pending and answers its pings.
    private func consume(index: Int, arrived: UInt64) throws {
        var start = 0
        var events = 0
        var bytes = pending[index].bytes
        pending[index].bytes = []
        defer { pending[index].bytes = bytes }
        while let (opcode, payload, size) = Self.frame(in: bytes[start...]) {
            start += size
            switch opcode {
            case 1:
                if let sent = Self.sendTime(in: payload), arrived >= sent {
                    histogram.record(arrived - sent)
                    events += 1
                }
            case 9:
                // A masked pong with the ping's payload (at most 125 bytes, RFC 6455 §5.5).
                var pong: [UInt8] = [0x8A, 0x80 | UInt8(payload.count), 0, 0, 0, 0]
                pong.append(contentsOf: payload)
                try writeAll(descriptors[index], pong)
            default: break
            }
        }
        bytes.removeFirst(start)
        if events > 0 { received.add(events, ordering: .relaxed) }
    }

    /// The first whole frame of `bytes` (sent by the server, so not masked): its opcode, its payload, and its
    /// size with the header.
    private static func frame(in bytes: ArraySlice<UInt8>) -> (UInt8, ArraySlice<UInt8>, Int)? {
        let base = bytes.startIndex
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[base + 1] & 0x7F)
        var header = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[base + 2]) << 8 | Int(bytes[base + 3])
            header = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(bytes[base + $1]) }
            header = 10
        }
        guard bytes.count >= header + length else { return nil }
        return (bytes[base] & 0x0F, bytes[(base + header)..<(base + header + length)], header + length)
    }

    private static let headEnd = Array("\r\n\r\n".utf8)
    private static let sendTimeField = Array(#""t":""#.utf8)

    /// The send time the publisher wrote into the event's payload (`"t":"<20 digits>"`).
    private static func sendTime(in payload: ArraySlice<UInt8>) -> UInt64? {
        guard let at = end(of: sendTimeField, in: payload) else { return nil }
        var value: UInt64 = 0
        for byte in payload[at...].prefix(20) {
            guard (0x30...0x39).contains(byte) else { return nil }
            value = value * 10 + UInt64(byte - 0x30)
        }
        return value
    }

    private static func readSome(_ descriptor: Int32, into bytes: inout [UInt8]) throws {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let size = read(descriptor, &chunk, chunk.count)
        if size < 0 && errno == EINTR { return }
        guard size > 0 else { throw BenchError("the broker closed a WebSocket during its upgrade") }
        bytes.append(contentsOf: chunk[..<size])
    }
}
