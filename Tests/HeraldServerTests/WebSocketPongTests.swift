import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import HeraldServer

/// The pongs of ``WebSocketConnectionHandler`` on an embedded channel whose writability the test sets: a
/// client that floods pings without reading its socket holds one pong in the broker, not one per ping
/// (RFC 6455 §5.5.3; a black-box review saw 170 MiB held for one such client).
@Suite struct WebSocketPongTests {
    /// A channel with the gateway's WebSocket pipeline for an anonymous client subscribed to nothing.
    static func channel(_ broker: Broker) throws -> EmbeddedChannel {
        let request = HTTPGateway.WebSocketRequest(
            topics: [], buffer: 100, principal: Principal(name: "ws:anonymous", permissions: nil))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
        try channel.pipeline.syncOperations.addHandler(
            WebSocketConnectionHandler(broker: broker, request: request, connections: OpenConnections()))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// A client's frame: masked, with a mask of zeros, so its bytes are `text` as they are.
    static func frame(_ opcode: WebSocketOpcode, _ text: String) -> WebSocketFrame {
        WebSocketFrame(
            fin: true, opcode: opcode, maskKey: WebSocketMaskingKey([0, 0, 0, 0]), data: ByteBuffer(string: text))
    }

    /// Every write the handler made since the last call, one string each: a pong's payload, or a text frame's.
    static func written(_ channel: EmbeddedChannel) throws -> [String] {
        var frames: [String] = []
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) {
            // Server frames are unmasked and, here, shorter than 126 bytes: two bytes of header.
            let header = bytes.readBytes(length: 2) ?? [0, 0]
            let kind = header[0] & 0x0F == 0xA ? "pong" : "text"
            frames.append("\(kind) \(bytes.readString(length: Int(header[1] & 0x7F)) ?? "")")
        }
        return frames
    }

    @Test func pingsWhileTheSocketIsFullAreAnsweredByThePongOfTheLatest() throws {
        let broker = Broker(configuration: HeraldConfiguration(), logger: Logger(label: "pong-test"))
        let channel = try Self.channel(broker)
        try channel.writeInbound(Self.frame(.ping, "first"))
        #expect(try Self.written(channel) == ["pong first"])
        // The client stops reading: its socket fills and the channel is no longer writable.
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        for number in 1...10_000 { try channel.writeInbound(Self.frame(.ping, "\(number)")) }
        #expect(try Self.written(channel) == [])
        // Writable again: one pong, the latest ping's; a request sent meanwhile is answered after it.
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        try channel.writeInbound(Self.frame(.text, #"{"op":"ping","id":"end"}"#))
        #expect(try Self.written(channel) == ["pong 10000", #"text {"op":"pong","id":"end"}"#])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    /// Each binary message is answered with an error: a client that sends them by the thousand without reading
    /// is paused as one that does not read its replies, after 16 384 writes while its socket is full.
    @Test func binaryMessagesWhileTheSocketIsFullPauseReading() throws {
        let broker = Broker(configuration: HeraldConfiguration(), logger: Logger(label: "binary-test"))
        let channel = try Self.channel(broker)
        func readingPaused() -> Bool {
            channel.options.contains { $0.option is ChannelOptions.Types.AutoReadOption && $0.value as? Bool == false }
        }
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        for _ in 0..<BrokerConnection.unreadWritesLimit { try channel.writeInbound(Self.frame(.binary, "x")) }
        #expect(!readingPaused())
        try channel.writeInbound(Self.frame(.binary, "x"))
        #expect(readingPaused())
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
