import Foundation

/// A socket (a Unix path, or a loopback port the kernel picks) that takes connections and never says a word:
/// a broker that does not answer, a server that never answers the AMQP handshake. The kernel completes
/// connections from the listen backlog; ``waitForConnection(seconds:)`` also accepts one and keeps it open.
final class SilentListener: @unchecked Sendable {
    /// The Unix socket's path, for a listener made with ``init(unixPath:)``.
    let path: String?
    /// The port, for a listener made with ``init()``.
    let port: Int?
    private let descriptor: Int32
    private var accepted: [Int32] = []

    init(unixPath: String) throws {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in unixPath.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard bound, listen(descriptor, 8) == 0 else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        self.descriptor = descriptor
        path = unixPath
        port = nil
    }

    /// Listens on 127.0.0.1, on a port the kernel picks (bound here, so no other test can take it in between).
    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound, listen(descriptor, 8) == 0 else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        self.descriptor = descriptor
        path = nil
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        accepted.forEach { close($0) }
        close(descriptor)
        if let path { unlink(path) }
    }

    /// Closes the connections accepted so far, as a broker that dies would.
    func closeConnections() {
        accepted.forEach { close($0) }
        accepted.removeAll()
    }

    /// Waits until a client has connected, and keeps the connection open (and silent).
    func waitForConnection(seconds: Int = 30) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let client = accept(descriptor, nil, nil)
            if client >= 0 {
                accepted.append(client)
                return
            }
            guard ContinuousClock.now < deadline else { throw POSIXError(.ETIMEDOUT) }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
