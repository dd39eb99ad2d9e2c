import Foundation
import HeraldProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// A blocking Unix socket connection for the benchmark's worker threads: the benchmark measures the broker,
/// so its clients do as little as they can — frames are built once and patched, written in large chunks,
/// and read with a scan of the `event` header, never a JSON parse.
/// Unchecked `Sendable`: each socket is used by one thread at a time, handed from the setup to its worker.
final class BenchSocket: @unchecked Sendable {
    private let descriptor: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0

    init(path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(descriptor)
            throw BenchError("\(path): the socket path is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw BenchError("\(path): cannot connect (errno \(errno))")
        }
        self.descriptor = descriptor
        buffer = .allocate(byteCount: 4 << 20, alignment: 8)
    }

    deinit {
        close(descriptor)
        buffer.deallocate()
    }

    /// Ends the connection in both directions: a thread blocked reading it sees the end (from any thread).
    func interrupt() {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// Writes every byte, as many system calls as it takes.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(descriptor, bytes)
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Calls `body` with each frame's JSON bytes as they arrive, until it returns `false`.
    func readFrames(_ body: (UnsafeRawBufferPointer) throws -> Bool) throws {
        while true {
            while end - start >= 4 {
                let length =
                    Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8
                    | Int(buffer[start + 3])
                guard end - start >= 4 + length else { break }
                let frame = UnsafeRawBufferPointer(rebasing: buffer[(start + 4)..<(start + 4 + length)])
                start += 4 + length
                guard try body(frame) else { return }
            }
            if start > 0 {
                // Move the partial frame to the front.
                let remaining = end - start
                if remaining > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + start, remaining) }
                start = 0
                end = remaining
            }
            if end == buffer.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 8)
                larger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = larger
            }
            let count = read(descriptor, buffer.baseAddress! + end, buffer.count - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw BenchError("read: errno \(errno)")
            }
            guard count > 0 else { throw BenchError("the broker closed the connection") }
            end += count
        }
    }

    /// Sends one request and returns the first reply frame with its `id` (an `ok`, `pong`, `welcome` or
    /// `error`), as text; other frames before it go to `skipped`.
    func request(_ json: String, skipped: (String) -> Void = { _ in }) throws -> String {
        var frame = FrameLength.prefix(json.utf8.count)
        frame.append(contentsOf: json.utf8)
        try write(frame)
        var reply = ""
        try readFrames { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            guard text.contains(#""id":"#) && !text.hasPrefix(#"{"op":"event""#) else {
                skipped(text)
                return true
            }
            reply = text
            return false
        }
        return reply
    }
}

/// Writes every byte of `bytes` to `descriptor`, as many system calls as it takes (waiting out `EAGAIN` on a
/// non-blocking socket).
func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
        let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            throw BenchError("write: errno \(errno)")
        }
        offset += written
    }
}

func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try writeAll(descriptor, $0) }
}

/// A blocking TCP connection to `host` (an IPv4 address) and `port`, with `TCP_NODELAY`.
func connectTCP(host: String, port: UInt16) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw BenchError("socket: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
        close(descriptor)
        throw BenchError("\(host): not an IPv4 address")
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        close(descriptor)
        throw BenchError("\(host):\(port): cannot connect (errno \(errno))")
    }
    var one: Int32 = 1
    setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    return descriptor
}

/// The index after the first occurrence of `needle` in `haystack`. Written out rather than the standard
/// library's `firstRange(of:)`, whose generic searcher cost the WebSocket clients several microseconds per
/// message — enough, at a million messages, to measure the clients instead of the broker.
func end(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
    guard let first = needle.first, haystack.count >= needle.count else { return nil }
    var index = haystack.startIndex
    while index <= haystack.endIndex - needle.count {
        if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
            return index + needle.count
        }
        index += 1
    }
    return nil
}

/// The host and port of `HOST:PORT` (an IPv4 listener, as the broker's ready line gives it).
func hostAndPort(_ address: String) throws -> (host: String, port: UInt16) {
    guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
        throw BenchError("\(address): expected HOST:PORT")
    }
    return (String(address[..<colon]), port)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Nanoseconds on the monotonic clock, which every process on the machine shares.
func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Runs `body` on its own thread (the benchmark's clients block in system calls) and returns its result.
func onThread<Value: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }
}
