import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A client on a blocking Unix socket, run on a thread of its own (``onOwnThread(_:)``): a peer that answers
/// in time however busy the test process's task pool is, as a module in another process would. The
/// heartbeat tests use it, since the broker's heartbeat runs on its event loop and must not be judged by a
/// client that other tests' work keeps from running.
final class BlockingPeer {
    private let descriptor: Int32
    private var received: [UInt8] = []

    init(path: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PeerError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw PeerError("\(path): cannot connect (errno \(errno))")
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// A second descriptor of the same connection, for a thread that writes while another reads.
    func duplicateDescriptor() -> Int32 { dup(descriptor) }

    /// Sends `json` as one frame.
    func send(_ json: String) throws {
        try sendAll(lengthPrefixed(Array(json.utf8)), to: descriptor)
    }

    /// The next frame as text, waiting for it; `nil` when the broker closed the connection.
    func receive() throws -> String? {
        while true {
            if received.count >= 4 {
                let length = received[0..<4].reduce(0) { $0 << 8 | Int($1) }
                if received.count >= 4 + length {
                    let frame = String(decoding: received[4..<(4 + length)], as: UTF8.self)
                    received.removeFirst(4 + length)
                    return frame
                }
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count == 0 { return nil }
            guard count > 0 else {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return nil }
                throw PeerError("read: errno \(errno)")
            }
            received.append(contentsOf: chunk[0..<count])
        }
    }

    /// Says hello as `module` and returns once welcomed (skipping pings that come first).
    func hello(_ module: String) throws {
        try send(#"{"op":"hello","protocol":1,"module":{"name":""# + module + #"","version":"1.0"}}"#)
        var welcome = try receive()
        while welcome == #"{"op":"ping"}"# { welcome = try receive() }
        guard welcome?.hasPrefix(#"{"op":"welcome""#) == true else {
            throw PeerError("no welcome: \(welcome ?? "closed")")
        }
    }
}

/// Writes all of `bytes` to a blocking socket. MSG_NOSIGNAL: a peer whose broker was killed gets EPIPE, not
/// a SIGPIPE that ends the tests.
func sendAll(_ bytes: [UInt8], to descriptor: Int32) throws {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes {
            Glibc.send(descriptor, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL))
        }
        guard written > 0 else { throw PeerError("write: errno \(errno)") }
        offset += written
    }
}

struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` on a new thread (not the task pool) and returns its result.
func onOwnThread<Value: Sendable, Failure: Error>(
    _ body: @escaping @Sendable () throws(Failure) -> Value
) async throws(Failure) -> Value {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, Failure>, Never>) in
        Thread { continuation.resume(returning: Result { () throws(Failure) in try body() }) }.start()
    }
    return try result.get()
}

/// Sends `request` (raw bytes, as a client that builds its own requests would) to the TCP listener at
/// `address` (`host:port`) and returns everything the broker answers until it closes the connection (or 20
/// seconds pass).
func rawExchange(address: String, _ request: String) async throws -> String {
    try await rawExchange(address: address, request, thenOnceReceived: nil, send: "").answer
}

/// ``rawExchange(address:_:)`` in two steps: sends `request`, reads until what it received contains
/// `marker` (an interim response), then sends `body` and reads the rest. Returns what came before the body
/// was sent, and everything.
func rawExchange(address: String, _ request: String, thenOnceReceived marker: String?, send body: String)
    async throws -> (beforeBody: String, answer: String)
{
    try await onOwnThread {
        let colon = address.lastIndex(of: ":")!
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PeerError("socket: errno \(errno)") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = UInt16(address[address.index(after: colon)...])!.bigEndian
        socketAddress.sin_addr.s_addr = inet_addr(String(address[..<colon]))
        let connected = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw PeerError("\(address): cannot connect (errno \(errno))") }
        func write(_ text: String) {
            let bytes = Array(text.utf8)
            var sent = 0
            while sent < bytes.count {
                let written = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
                guard written > 0 else { break }
                sent += written
            }
        }
        write(request)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var beforeBody = ""
        if let marker {
            while !String(decoding: received, as: UTF8.self).contains(marker) {
                let count = recv(descriptor, &chunk, chunk.count, 0)
                guard count > 0 else { break }
                received += chunk[..<count]
            }
            beforeBody = String(decoding: received, as: UTF8.self)
            write(body)
        }
        while true {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            guard count > 0 else { break }
            received += chunk[..<count]
        }
        return (beforeBody, String(decoding: received, as: UTF8.self))
    }
}
