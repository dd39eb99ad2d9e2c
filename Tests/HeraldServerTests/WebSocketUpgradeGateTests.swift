import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import HeraldServer

/// What the gate in front of a connection's first request does with bytes that are not HTTP and with a
/// connection that sends nothing, on an embedded channel whose clock the test moves.
@Suite struct WebSocketUpgradeGateTests {
    /// An HTTP decoder and encoder with the gate after the decoder, as in ``GatewayChannel``.
    private func channel(timeout: TimeAmount = .seconds(30)) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder())
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        try channel.pipeline.syncOperations.addHandler(WebSocketUpgradeGate(timeout: timeout) { _, _ in })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything the channel wrote, as text.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = part else { continue }
            text += String(buffer: buffer)
        }
        return text
    }

    @Test(arguments: [
        ("\u{0}\u{1}GARBAGE\r\n\r\n", "invalid HTTP method"),
        ("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "content-length"),
    ])
    func bytesThatAreNotHTTPGetA400WithAnErrorBodyAndTheConnectionCloses(request: String, reason: String) throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: request))
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(
            answer.contains(#"{"error":{"code":"invalid_request","message":"request: not a valid HTTP/1.1 request"#))
        #expect(answer.contains(reason))
        #expect(!channel.isActive)
    }

    @Test func anHTTP10RequestIsPassedOnToCloseUnlessItAsksToKeepTheConnection() throws {
        for (request, connection) in [
            ("GET /healthz HTTP/1.0\r\n\r\n", "close"),
            ("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "keep-alive"),
            ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", nil),
        ] as [(String, String?)] {
            let channel = try channel()
            try channel.writeInbound(ByteBuffer(string: request))
            guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else {
                Issue.record("no head passed on for \(request)")
                continue
            }
            #expect(head.headers.first(name: "connection") == connection, "\(request)")
        }
    }

    @Test func aHeaderSectionOverTheDecodersLimitGetsA431() throws {
        let channel = try channel()
        try channel.writeInbound(
            ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + String(repeating: "a", count: 200_000)))
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(answer.contains(#""code":"too_large""#))
        #expect(!channel.isActive)
    }

    @Test func aConnectionWhoseFirstRequestHeadDoesNotArriveInTimeIsClosed() throws {
        let silent = try channel(timeout: .seconds(30))
        // Half a request line, then nothing.
        try silent.writeInbound(ByteBuffer(string: "GET /heal"))
        silent.embeddedEventLoop.advanceTime(by: .seconds(29))
        #expect(silent.isActive)
        silent.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!silent.isActive)
        // A head in time ends the deadline: the gate passes the request on and leaves the pipeline.
        let prompt = try channel(timeout: .seconds(30))
        try prompt.writeInbound(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        guard case .head(let head) = try prompt.readInbound(as: HTTPServerRequestPart.self) else {
            Issue.record("the request head was not passed on")
            return
        }
        #expect(head.uri == "/healthz")
        prompt.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(prompt.isActive)
        #expect(throws: (any Error).self) {
            try prompt.pipeline.syncOperations.handler(type: WebSocketUpgradeGate.self)
        }
    }
}

/// The Host rule of ``CrossSiteCheck``: an address or localhost, never another name.
@Suite struct CrossSiteCheckTests {
    @Test(arguments: [
        ("127.0.0.1:7480", true), ("127.0.0.1", true), ("localhost:7480", true), ("LOCALHOST", true),
        ("[::1]:7480", true), ("[::1]", true), ("10.0.0.5:80", true), ("evil.example:7480", false),
        ("evil.example", false), ("127.0.0.1.evil.example", false), ("256.0.0.1", false), ("1.2.3", false),
        ("localhost:", false), ("localhost:abc", false), ("[::1]x", false), ("", false),
        // Numbers that are not ASCII digits (`Int` reads none of them: a force unwrap of it stopped the broker).
        ("1.1.1.½", false), ("1.1.1.٣", false), ("１.1.1.1", false), ("127.0.0.1:８０", false), ("[::1]:²", false),
    ])
    func aHostIsAnAddressOrLocalhost(host: String, accepted: Bool) {
        #expect(CrossSiteCheck.isAddressOrLocalhost(host) == accepted)
    }
}
