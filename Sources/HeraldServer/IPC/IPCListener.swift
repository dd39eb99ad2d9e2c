import HeraldProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An IPC listener (PROTOCOL.md §2.1): the Unix domain socket (mode 0600, a stale file replaced) or the
/// optional TCP listener, which speaks the same frames and always requires a token. Each connection is
/// served on its channel's event loop by an ``IPCConnectionHandler``. A `Service`.
///
/// On graceful shutdown the listener publishes `node.shutdown` (once per broker), stops accepting, and gives
/// open connections `modules.shutdown_timeout_ms` to leave; from then on a new `subscribe` or `publish` is
/// refused with `shutting_down`. Connections still open at the deadline are closed.
public final class IPCListener: Service, Sendable {
    /// Where a listener listens.
    public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
        /// A Unix domain socket at a path.
        case unix(path: String)
        /// A TCP address; port 0 asks for any free port.
        case tcp(host: String, port: Int)

        public var description: String {
            switch self {
            case .unix(let path): path
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            }
        }
    }

    private let broker: Broker
    /// Where this listener was asked to listen.
    public let endpoint: Endpoint
    /// Where it listens once bound: for TCP, with the real port when port 0 asked for any.
    private let bound: Mutex<Endpoint?> = Mutex(nil)
    /// Yields `nil` once listening, or the error that stopped the listener before it could listen.
    private let listening: AsyncStream<(any Error)?>
    private let listeningContinuation: AsyncStream<(any Error)?>.Continuation

    /// The Unix socket listener for `broker`, on the socket its configuration names.
    public convenience init(broker: Broker) {
        self.init(broker: broker, endpoint: .unix(path: broker.configuration.socketPath))
    }

    /// The TCP listener `ipc.tcp` asks for, or `nil` when it is off.
    public static func tcp(for broker: Broker) -> IPCListener? {
        guard let address = HostPort(broker.configuration.ipc.tcp) else { return nil }
        return IPCListener(broker: broker, endpoint: .tcp(host: address.host, port: address.port))
    }

    init(broker: Broker, endpoint: Endpoint) {
        self.broker = broker
        self.endpoint = endpoint
        (listening, listeningContinuation) = AsyncStream.makeStream()
    }

    /// The Unix socket's path (empty for a TCP listener).
    public var path: String {
        if case .unix(let path) = endpoint { return path }
        return ""
    }

    /// Where the listener listens: the socket path, or `host:port` with the port actually bound.
    public var address: String { (bound.withLock { $0 } ?? endpoint).description }

    /// The TCP port actually bound, once listening (nil for a Unix socket).
    public var boundPort: Int? {
        if case .tcp(_, let port)? = bound.withLock({ $0 }) { return port }
        return nil
    }

    /// Returns once the listener accepts connections, or throws what stopped it before that.
    public func waitUntilListening() async throws {
        for await failure in listening {
            if let failure { throw failure }
            return
        }
        throw ListenerStopped(reason: "it ended before listening")
    }

    public func run() async throws {
        defer { listeningContinuation.finish() }
        let connections = OpenConnections()
        let server: any Channel
        do {
            server = try await bind(connections)
        } catch {
            listeningContinuation.yield(error)
            broker.startupFailed()
            throw error
        }
        if case .tcp(let host, _) = endpoint, let port = server.localAddress?.port {
            bound.withLock { $0 = .tcp(host: host, port: port) }
        }
        let kind = isTCP ? "tcp" : "unix"
        broker.logger.info("ipc listening", metadata: ["ipc.\(kind)": "\(address)"])
        listeningContinuation.yield(nil)
        defer { if case .unix(let path) = endpoint { unlink(path) } }
        let broker = self.broker
        let drain = Duration.milliseconds(broker.configuration.modules.shutdownTimeoutMs)
        // The shutdown begins when this service is told to stop, or when another part of the broker began it
        // (the other listener): every listener drains at once, not one after the other.
        await withTaskGroup(of: Void.self) { first in
            first.addTask { try? await gracefulShutdown() }
            first.addTask { await broker.shutdownBegun() }
            await first.next()
            first.cancelAll()
        }
        if !Task.isCancelled { broker.beginShutdown() }
        // Stop accepting; open connections go on until they leave or the deadline closes them.
        try? await server.close()
        if !Task.isCancelled {
            await withTaskGroup(of: Void.self) { drained in
                drained.addTask { await connections.waitUntilEmpty() }
                drained.addTask { try? await Task.sleep(for: drain) }
                drained.addTask { await broker.shutdownHurried() }
                await drained.next()
                drained.cancelAll()
                connections.closeAll()
            }
        }
        connections.closeAll()
        await connections.waitUntilEmpty()
        broker.logger.info("ipc closed", metadata: ["ipc.\(kind)": "\(address)"])
        // A listener that drained because another began the shutdown still returns only when its service
        // group tells it to: a service that ends on its own is a failure to the group.
        try? await gracefulShutdown()
    }

    private var isTCP: Bool {
        if case .tcp = endpoint { return true }
        return false
    }

    /// The largest read from one connection.
    static let maximumRead = 256 << 10
    /// A connection stops being writable (its deliveries pause) when this much is queued and not yet
    /// written to the socket, and writable again below the low mark.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 << 10, high: 64 << 10)

    /// Binds the endpoint. A Unix socket replaces a stale socket file (but no other kind of file) and is made
    /// private; a TCP listener sends small frames at once (no Nagle delay).
    private func bind(_ connections: OpenConnections) async throws -> any Channel {
        let maximumFrame = broker.configuration.ipc.maxFrame
        let broker = self.broker
        let requiresToken = isTCP
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: isTCP ? 1 : 0)
            // Reads of up to 256 KiB (from 64 KiB): a busy publisher's frames arrive in large batches
            // (FrameDecoder), and its loop's other connections still get their turn within milliseconds.
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: Self.maximumRead)
            )
            .childChannelOption(.writeBufferWaterMark, value: Self.writeBufferWaterMark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(FrameDecoder(maximumLength: maximumFrame)),
                        IPCConnectionHandler(broker: broker, requiresToken: requiresToken, connections: connections)
                    )
                }
            }
        switch endpoint {
        case .unix(let path):
            // A socket file with a broker behind it is not stale: replacing it would take the path from a
            // running broker (whose clients would then reach this one, and none once this one exits).
            if Self.acceptsConnections(unixSocket: path) {
                throw ListenerStopped(
                    reason: "ipc.socket: \(path) is in use: a broker (or another program) accepts connections on it")
            }
            let server: any Channel
            do {
                server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            } catch is UnixDomainSocketPathWrongType {
                throw ListenerStopped(reason: "ipc.socket: \(path) exists and is not a socket; it is left alone")
            } catch {
                throw ListenerStopped(reason: "ipc.socket: cannot listen on \(path): \(error)")
            }
            guard chmod(path, 0o600) == 0 else {
                try? await server.close()
                throw ListenerStopped(reason: "ipc.socket: cannot make \(path) private (mode 0600)")
            }
            return server
        case .tcp(let host, let port):
            do {
                return try await bootstrap.bind(host: host, port: port).get()
            } catch {
                throw ListenerStopped(reason: "ipc.tcp: cannot listen on \(endpoint): \(error)")
            }
        }
    }

    /// Whether something listens on the Unix socket at `path`: a connection to it succeeds (or is only
    /// refused for a full backlog). A stale file, left by a process that died, refuses connections.
    public static func acceptsConnections(unixSocket path: String) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return connected == 0 || errno == EAGAIN
    }

    /// Why the listener could not serve.
    public struct ListenerStopped: Error, CustomStringConvertible {
        /// What went wrong, naming the option at fault.
        public let reason: String

        public var description: String { reason }
    }
}
