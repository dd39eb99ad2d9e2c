import HeraldProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The IPC socket (PROTOCOL.md §2.1): a Unix domain socket, mode 0600, a stale file replaced, each
/// connection served by its own task. A `Service`: `run()` returns when graceful shutdown closes it.
public final class IPCListener: Service, Sendable {
    private let broker: Broker
    /// The socket's path.
    public let path: String
    /// Yields `nil` once listening, or the error that stopped the listener before it could listen.
    private let listening: AsyncStream<(any Error)?>
    private let listeningContinuation: AsyncStream<(any Error)?>.Continuation

    /// A listener for `broker` on the socket its configuration names.
    public init(broker: Broker) {
        self.broker = broker
        self.path = broker.configuration.socketPath
        (listening, listeningContinuation) = AsyncStream.makeStream()
    }

    /// Returns once the socket accepts connections, or throws what stopped the listener before that.
    public func waitUntilListening() async throws {
        for await failure in listening {
            if let failure { throw failure }
            return
        }
        throw ListenerStopped(reason: "it ended before listening")
    }

    public func run() async throws {
        defer { listeningContinuation.finish() }
        let server: NIOAsyncChannel<NIOAsyncChannel<InboundFrame, ByteBuffer>, Never>
        do {
            server = try await bind()
        } catch {
            listeningContinuation.yield(error)
            throw error
        }
        broker.logger.info("ipc listening", metadata: ["ipc.socket": "\(path)"])
        listeningContinuation.yield(nil)
        defer { unlink(path) }
        let broker = self.broker
        do {
            // Graceful shutdown cancels the accept loop and, through the task group, every connection.
            try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    try await server.executeThenClose { connections in
                        for try await connection in connections {
                            group.addTask { await IPCConnection(broker: broker, channel: connection).run() }
                        }
                    }
                }
            }
        } catch is CancellationError where Task.isShuttingDownGracefully {
            broker.logger.info("ipc closed", metadata: ["ipc.socket": "\(path)"])
        }
    }

    /// Binds the socket, replacing a stale socket file (but no other kind of file), and makes it private.
    private func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<InboundFrame, ByteBuffer>, Never> {
        let maximumFrame = broker.configuration.ipc.maxFrame
        let server: NIOAsyncChannel<NIOAsyncChannel<InboundFrame, ByteBuffer>, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(maximumLength: maximumFrame))
                        )
                        return try NIOAsyncChannel<InboundFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
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
    }

    /// Why the listener could not serve.
    public struct ListenerStopped: Error, CustomStringConvertible {
        /// What went wrong, naming the option at fault.
        public let reason: String

        public var description: String { reason }
    }
}
