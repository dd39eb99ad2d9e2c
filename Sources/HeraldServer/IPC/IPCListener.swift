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
/// served by its own task. A `Service`.
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
        let server: NIOAsyncChannel<NIOAsyncChannel<[InboundFrame], ByteBuffer>, Never>
        do {
            server = try await bind()
        } catch {
            listeningContinuation.yield(error)
            throw error
        }
        if case .tcp(let host, _) = endpoint, let port = server.channel.localAddress?.port {
            bound.withLock { $0 = .tcp(host: host, port: port) }
        }
        let kind = isTCP ? "tcp" : "unix"
        broker.logger.info("ipc listening", metadata: ["ipc.\(kind)": "\(address)"])
        listeningContinuation.yield(nil)
        defer { if case .unix(let path) = endpoint { unlink(path) } }
        let broker = self.broker
        let requiresToken = isTCP
        let drain = Duration.milliseconds(broker.configuration.modules.shutdownTimeoutMs)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // Ends when the accept loop has ended and every connection with it.
                try await withThrowingDiscardingTaskGroup { group in
                    do {
                        try await server.executeThenClose { connections in
                            for try await connection in connections {
                                group.addTask {
                                    await IPCConnection(
                                        broker: broker, channel: connection, requiresToken: requiresToken
                                    ).run()
                                }
                            }
                        }
                    } catch  where broker.isShuttingDown {
                        // Closing the listener at shutdown may end the accept loop with an error; the open
                        // connections must not be cancelled by it, they have until the deadline.
                    }
                }
            }
            tasks.addTask {
                // The shutdown begins when this service is told to stop, or when another part of the broker
                // began it (the other listener): every listener drains at once, not one after the other.
                await withTaskGroup(of: Void.self) { first in
                    first.addTask { try? await gracefulShutdown() }
                    first.addTask { await broker.shutdownBegun() }
                    await first.next()
                    first.cancelAll()
                }
                try Task.checkCancellation()
                broker.beginShutdown()
                // Stop accepting; open connections go on until they leave or the deadline closes them.
                try? await server.channel.close()
                try await Task.sleep(for: drain)
            }
            // Whichever ends first (every connection gone, or the deadline) ends the other.
            try await tasks.next()
            tasks.cancelAll()
        }
        broker.logger.info("ipc closed", metadata: ["ipc.\(kind)": "\(address)"])
        // A listener that drained because another began the shutdown still returns only when its service
        // group tells it to: a service that ends on its own is a failure to the group.
        try? await gracefulShutdown()
    }

    private var isTCP: Bool {
        if case .tcp = endpoint { return true }
        return false
    }

    /// Binds the endpoint. A Unix socket replaces a stale socket file (but no other kind of file) and is made
    /// private; a TCP listener sends small frames at once (no Nagle delay).
    private func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<[InboundFrame], ByteBuffer>, Never> {
        let maximumFrame = broker.configuration.ipc.maxFrame
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: isTCP ? 1 : 0)
            // Reads of up to 1 MiB (from 64 KiB), so that a busy publisher's frames arrive in few, large
            // batches: the connection's task then wakes once per batch (FrameDecoder).
            .childChannelOption(
                .recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20)
            )
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<[InboundFrame], ByteBuffer>> = {
            channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    ByteToMessageHandler(FrameDecoder(maximumLength: maximumFrame))
                )
                return try NIOAsyncChannel<[InboundFrame], ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        switch endpoint {
        case .unix(let path):
            let server: NIOAsyncChannel<NIOAsyncChannel<[InboundFrame], ByteBuffer>, Never>
            do {
                server = try await bootstrap.bind(
                    unixDomainSocketPath: path,
                    cleanupExistingSocketFile: true,
                    childChannelInitializer: initializer
                )
            } catch is UnixDomainSocketPathWrongType {
                throw ListenerStopped(reason: "ipc.socket: \(path) exists and is not a socket; it is left alone")
            } catch {
                throw ListenerStopped(reason: "ipc.socket: cannot listen on \(path): \(error)")
            }
            guard chmod(path, 0o600) == 0 else {
                try? await server.channel.close()
                throw ListenerStopped(reason: "ipc.socket: cannot make \(path) private (mode 0600)")
            }
            return server
        case .tcp(let host, let port):
            do {
                return try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
            } catch {
                throw ListenerStopped(reason: "ipc.tcp: cannot listen on \(endpoint): \(error)")
            }
        }
    }

    /// Why the listener could not serve.
    public struct ListenerStopped: Error, CustomStringConvertible {
        /// What went wrong, naming the option at fault.
        public let reason: String

        public var description: String { reason }
    }
}
