import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A WebSocket client for the broker's gateway (`GET /v1/ws`, PROTOCOL.md §7), on SwiftNIO: text messages
/// in and out, pings answered. `herald bench ws` and the tests use it; a web page uses its browser's own.
public struct HeraldWebSocket: Sendable {
    private let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>

    /// Why the connection could not be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// One received message's text, in the order the broker sent them.
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = String
        fileprivate let inbound: NIOAsyncChannelInboundStream<WebSocketFrame>
        fileprivate let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>

        public struct AsyncIterator: AsyncIteratorProtocol {
            fileprivate var frames: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator
            fileprivate let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
            private var partial: ByteBuffer?

            fileprivate init(
                frames: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator,
                outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
            ) {
                self.frames = frames
                self.outbound = outbound
            }

            /// The next text message; `nil` once the broker closed the socket.
            public mutating func next() async throws -> String? {
                while let frame = try await frames.next() {
                    switch frame.opcode {
                    case .ping:
                        try await outbound.write(
                            HeraldWebSocket.masked(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)))
                    case .text, .binary:
                        if frame.fin { return String(buffer: frame.unmaskedData) }
                        partial = frame.unmaskedData
                    case .continuation:
                        var data = frame.unmaskedData
                        partial?.writeBuffer(&data)
                        if frame.fin, let whole = partial {
                            partial = nil
                            return String(buffer: whole)
                        }
                    case .connectionClose:
                        return nil
                    default:
                        continue
                    }
                }
                return nil
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(frames: inbound.makeAsyncIterator(), outbound: outbound)
        }
    }

    /// Sends one text message.
    public func send(_ text: String) async throws {
        try await outbound.write(Self.masked(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))))
    }

    /// Client frames are masked (RFC 6455 §5.3).
    fileprivate static func masked(_ frame: WebSocketFrame) -> WebSocketFrame {
        var frame = frame
        frame.maskKey = .random()
        return frame
    }

    private enum Upgrade {
        case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    /// Connects to `ws://address/path` (path with its query string), sending `token` as a bearer token when
    /// given, runs `body` with the socket and its messages, and closes it.
    public static func connect<Result: Sendable>(
        address: String, path: String, token: String? = nil,
        _ body: (HeraldWebSocket, Messages) async throws -> Result
    ) async throws -> Result {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw Failure(description: "ws: '\(address)' is not host:port")
        }
        let host = String(address[..<colon])
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: 1 << 24) { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            .upgraded(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                        }
                    }
                    var headers = HTTPHeaders()
                    headers.add(name: "Host", value: address)
                    headers.add(name: "Content-Length", value: "0")
                    if let token { headers.add(name: "Authorization", value: "Bearer \(token)") }
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                        upgradeRequestHead: HTTPRequestHead(
                            version: .http1_1, method: .GET, uri: path, headers: headers),
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in
                            channel.close(promise: nil)
                            return channel.eventLoop.makeSucceededFuture(.refused)
                        }
                    )
                    var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: configuration)
                    // The broker may send its first message in the same read as the 101: keep those bytes.
                    pipeline.leftOverBytesStrategy = .forwardBytes
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: pipeline)
                }
            }
        switch try await upgrade.get() {
        case .refused:
            throw Failure(description: "ws: the broker refused the upgrade of \(path)")
        case .upgraded(let channel):
            return try await channel.executeThenClose { inbound, outbound in
                try await body(HeraldWebSocket(outbound: outbound), Messages(inbound: inbound, outbound: outbound))
            }
        }
    }
}
