import Foundation
import HeraldClient
import HeraldCore
import Testing

@testable import HeraldServer

/// PROTOCOL.md §7's WebSocket with a real client: the query's subscription, the client messages of §2.2,
/// a malformed message kept open, the bounded queue with `drop_newest`, statistics and tokens.
@Suite(.timeLimit(.minutes(3)))
struct WebSocketGatewayTests {
    static func start(_ configure: @escaping (inout HeraldConfiguration) -> Void = { _ in }) async throws
        -> TestBroker
    {
        try await TestBroker.start(http: true, configure)
    }

    /// The next message that is not an event of a subscription other than `subscription`.
    static func next(_ messages: inout HeraldWebSocket.Messages.AsyncIterator) async throws -> String {
        try #require(try await messages.next())
    }

    @Test func theQuerysTopicsAreOneLiveSubscription() async throws {
        let broker = try await Self.start()
        try await HeraldWebSocket.connect(address: broker.gateway!.address, path: "/v1/ws?topics=block.new.*,tx") {
            _, messages in
            var messages = messages.makeAsyncIterator()
            #expect(try await Self.next(&messages) == #"{"op":"ok","subscription":1}"#)
            broker.broker.bus.publish(try EventEnvelope(eventType: "block.new.ethereum", eventID: "b1"))
            broker.broker.bus.publish(try EventEnvelope(eventType: "other", eventID: "o1"))
            broker.broker.bus.publish(try EventEnvelope(eventType: "tx", eventID: "t1"))
            let first = try await Self.next(&messages)
            #expect(first.hasPrefix(#"{"op":"event","subscription":1,"seq":1,"event":{"#))
            #expect(first.contains(#""event_id":"b1""#))
            let second = try await Self.next(&messages)
            #expect(second.hasPrefix(#"{"op":"event","subscription":1,"seq":2,"event":{"#))
            #expect(second.contains(#""event_id":"t1""#))
        }
        // Statistics under ws:anonymous, and no module.loaded for a WebSocket.
        try await waitUntil { broker.broker.bus.deliveryStatistics(for: "ws:anonymous")?.successful == 2 }
        // A `stats` request may name them (§5: only a name never seen is invalid_request).
        try await broker.withModule("reader") { (client: inout Conversation) async throws in
            let stats = try #require(try await client.request(#"{"op":"stats","id":1,"module":"ws:anonymous"}"#))
            #expect(stats.hasPrefix(#"{"op":"ok","id":1,"stats":{"ws:anonymous":{"successful":2,"#))
        }
        #expect(broker.broker.modules.loadedModules.isEmpty)
        try await broker.stop()
    }

    @Test func aClosedSocketEndsItsSubscriptions() async throws {
        let broker = try await Self.start()
        try await HeraldWebSocket.connect(address: broker.gateway!.address, path: "/v1/ws?topics=a,b") {
            (_: HeraldWebSocket, messages: HeraldWebSocket.Messages) async throws in
            var messages = messages.makeAsyncIterator()
            #expect(try await Self.next(&messages) == #"{"op":"ok","subscription":1}"#)
            #expect(broker.broker.bus.subscriptionCount == 1)
        }
        try await waitUntil { broker.broker.bus.subscriptionCount == 0 }
        try await broker.stop()
    }

    @Test func clientMessagesWorkAsOnTheSocketAndAMalformedOneKeepsTheSocket() async throws {
        let broker = try await Self.start()
        try await HeraldWebSocket.connect(address: broker.gateway!.address, path: "/v1/ws") { socket, messages in
            var messages = messages.makeAsyncIterator()
            try await socket.send(#"{"op":"ping","id":1}"#)
            #expect(try await Self.next(&messages) == #"{"op":"pong","id":1}"#)
            try await socket.send("not json")
            #expect(try await Self.next(&messages).hasPrefix(#"{"op":"error","code":"bad_frame""#))
            try await socket.send(#"{"op":"subscribe","id":2,"topics":["chat"]}"#)
            #expect(try await Self.next(&messages) == #"{"op":"ok","id":2,"subscription":1}"#)
            try await socket.send(#"{"op":"publish","id":3,"event":{"event_type":"chat","event_id":"c1"}}"#)
            var replies = [try await Self.next(&messages), try await Self.next(&messages)]
            replies.sort()
            #expect(replies[0].hasPrefix(#"{"op":"event","subscription":1,"seq":1,"event":{"#))
            #expect(replies[0].contains(#""producer":"ws:anonymous""#))
            #expect(replies[1] == #"{"op":"ok","id":3,"event_id":"c1","duplicate":false}"#)
            try await socket.send(#"{"op":"unsubscribe","id":4,"subscription":1}"#)
            #expect(try await Self.next(&messages) == #"{"op":"ok","id":4}"#)
            try await socket.send(#"{"op":"unsubscribe","id":5,"subscription":1}"#)
            #expect(try await Self.next(&messages).hasPrefix(#"{"op":"error","id":5,"code":"unknown_subscription""#))
            try await socket.send(#"{"op":"subscribe","id":6,"topics":["chat"],"group":"g"}"#)
            #expect(try await Self.next(&messages).hasPrefix(#"{"op":"error","id":6,"code":"invalid_request""#))
            try await socket.send(#"{"op":"hello","protocol":1,"module":{"name":"x","version":"1"}}"#)
            #expect(try await Self.next(&messages).hasPrefix(#"{"op":"error","code":"invalid_request""#))
            try await socket.send(#"{"op":"ping","id":7}"#)
            #expect(try await Self.next(&messages) == #"{"op":"pong","id":7}"#)
        }
        try await broker.stop()
    }

    @Test func aClientThatDoesNotReadLosesTheNewestEventsNotThePublisher() async throws {
        let broker = try await Self.start()
        let payload = String(repeating: "x", count: 100_000)
        try await HeraldWebSocket.connect(address: broker.gateway!.address, path: "/v1/ws?topics=big&buffer=1") {
            _, messages in
            var messages = messages.makeAsyncIterator()
            #expect(try await Self.next(&messages) == #"{"op":"ok","subscription":1}"#)
            // 40 MB the client does not read: socket buffers fill, then the one-event queue drops.
            for index in 0..<400 {
                broker.broker.bus.publish(
                    try EventEnvelope(
                        eventType: "big", eventID: "e\(index)", payload: RawJSON(validating: "\"" + payload + "\"")))
            }
            try await waitUntil { (broker.broker.bus.deliveryStatistics(for: "ws:anonymous")?.channelFull ?? 0) > 0 }
            // Reading drains the socket; a last small event is queued once there is room again, and what
            // arrives before it has gaps in seq where events were dropped.
            var marked = false
            var attempts = 0
            var seqs: [Int] = []
            while true {
                let message = try await Self.next(&messages)
                seqs.append(try #require(message.firstMatch(of: /"seq":(\d+)/).flatMap { Int($0.1) }))
                if message.contains(#""event_id":"last""#) { break }
                if !marked {
                    attempts += 1
                    marked =
                        broker.broker.bus.publish(try EventEnvelope(eventType: "big", eventID: "last")).delivered == 1
                }
            }
            // seq counts every matched event, dropped ones too (a marker dropped while the queue was still full
            // among them): the marker that arrived is the last one counted.
            #expect(seqs.last == 400 + attempts)
            #expect(seqs == seqs.sorted())
            #expect(seqs.count < 401)
        }
        let statistics = try #require(broker.broker.bus.deliveryStatistics(for: "ws:anonymous"))
        #expect(statistics.channelFull > 0)
        try await broker.stop()
    }

    @Test func tokensAreCheckedAtTheUpgrade() async throws {
        let broker = try await Self.start {
            $0.tokens = [
                HeraldConfiguration.Token(
                    name: "ui", secret: "ui-secret", publish: [], subscribe: [try! TopicPattern("block.#")])
            ]
        }
        let address = broker.gateway!.address
        await #expect(throws: HeraldWebSocket.Failure.self) {
            try await HeraldWebSocket.connect(address: address, path: "/v1/ws?topics=block.#") { _, _ in }
        }
        // The refusal is a 401, with or without the upgrade headers.
        let upgrade = [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
        let refused = try await broker.http().request("GET", "/v1/ws?topics=block.%23", headers: upgrade)
        #expect(refused.status == 401)
        #expect(refused.json?["error"] != nil)
        #expect(try await broker.http(token: "wrong").get("/v1/ws").status == 401)
        // A pattern the token does not cover is 403; a plain GET with a good token is told to upgrade.
        #expect(
            try await broker.http(token: "ui-secret").request("GET", "/v1/ws?topics=tx", headers: upgrade).status
                == 403)
        #expect(try await broker.http(token: "ui-secret").get("/v1/ws?topics=block.%23").status == 426)
        // The token in the query string, and the statistics under its name.
        try await HeraldWebSocket.connect(address: address, path: "/v1/ws?topics=block.%23&token=ui-secret") {
            _, messages in
            var messages = messages.makeAsyncIterator()
            #expect(try await Self.next(&messages) == #"{"op":"ok","subscription":1}"#)
            broker.broker.bus.publish(try EventEnvelope(eventType: "block.new", eventID: "b1"))
            #expect(try await Self.next(&messages).contains(#""event_id":"b1""#))
        }
        try await waitUntil { broker.broker.bus.deliveryStatistics(for: "ws:ui")?.successful == 1 }
        try await broker.stop()
    }

    // MARK: The WebSocket protocol itself (RFC 6455), with a client that writes frames byte for byte

    @Test func pingsFragmentsBinaryMessagesAndCloseFollowTheRFC() async throws {
        let broker = try await Self.start()
        let address = broker.gateway!.address
        let frames = try await onOwnThread { () throws -> [RawWebSocket.Frame?] in
            let socket = try RawWebSocket(address: address, path: "/v1/ws")
            var frames: [RawWebSocket.Frame?] = []
            try socket.send(.ping, Array("hi".utf8))
            frames.append(try socket.receiveSkippingPings())
            // A message in three fragments, a ping between two of them (control frames may interleave).
            try socket.send(text: #"{"op":"pi"#, fin: false)
            try socket.send(.ping, Array("mid".utf8))
            try socket.send(.continuation, Array(##"ng","id""##.utf8), fin: false)
            try socket.send(.continuation, Array(#":1}"#.utf8))
            frames.append(try socket.receiveSkippingPings())
            frames.append(try socket.receiveSkippingPings())
            try socket.send(.binary, [1, 2, 3])
            frames.append(try socket.receiveSkippingPings())
            try socket.send(.close, [0x03, 0xE8])
            frames.append(try socket.receiveSkippingPings())
            frames.append(try socket.receiveSkippingPings())
            return frames
        }
        #expect(frames[0] == RawWebSocket.Frame(opcode: 0xA, payload: Array("hi".utf8)))
        #expect(frames[1] == RawWebSocket.Frame(opcode: 0xA, payload: Array("mid".utf8)))
        #expect(frames[2] == RawWebSocket.Frame(opcode: 0x1, payload: Array(#"{"op":"pong","id":1}"#.utf8)))
        #expect(frames[3]?.opcode == 0x1)
        #expect(frames[3]?.text.hasPrefix(#"{"op":"error","code":"bad_frame""#) == true)
        // The close is echoed with its code (1000), then the broker closes the connection.
        #expect(frames[4] == RawWebSocket.Frame(opcode: 0x8, payload: [0x03, 0xE8]))
        #expect(frames[5] == nil)
        try await waitUntil { broker.broker.metrics.connections(.websocket) == 0 }
        try await broker.stop()
    }

    @Test func aMessageOverMaxFrameClosesTheSocketWith1009() async throws {
        let broker = try await Self.start { $0.ipc.maxFrame = 4096 }
        let address = broker.gateway!.address
        let closes = try await onOwnThread { () throws -> [RawWebSocket.Frame?] in
            // One frame too large, and a message whose fragments add up to too much.
            let whole = try RawWebSocket(address: address, path: "/v1/ws")
            try whole.send(text: String(repeating: " ", count: 5000))
            let fragmented = try RawWebSocket(address: address, path: "/v1/ws")
            try fragmented.send(text: String(repeating: " ", count: 3000), fin: false)
            try fragmented.send(.continuation, Array(repeating: 0x20, count: 3000))
            return [
                try whole.receiveSkippingPings(), try whole.receiveSkippingPings(),
                try fragmented.receiveSkippingPings(), try fragmented.receiveSkippingPings(),
            ]
        }
        #expect(closes[0]?.opcode == 0x8 && closes[0]?.closeCode == 1009)
        #expect(closes[1] == nil)
        #expect(closes[2]?.opcode == 0x8 && closes[2]?.closeCode == 1009)
        #expect(closes[3] == nil)
        try await broker.stop()
    }

    @Test func reservedBitsABadCloseCodeOrReasonAndByeAreAnsweredWithClose() async throws {
        let broker = try await Self.start()
        let address = broker.gateway!.address
        let closes = try await onOwnThread { () throws -> [RawWebSocket.Frame?] in
            let reserved = try RawWebSocket(address: address, path: "/v1/ws")
            try reserved.send(raw: [0xC1, 0x80, 0, 0, 0, 0])  // FIN, RSV1, text, masked, empty
            let badCode = try RawWebSocket(address: address, path: "/v1/ws")
            try badCode.send(.close, [0x03, 0xED])  // 1005 may not be sent
            let badReason = try RawWebSocket(address: address, path: "/v1/ws")
            try badReason.send(.close, [0x03, 0xE8, 0x6F, 0xFF])  // 1000, then a reason that is not UTF-8
            let goodReason = try RawWebSocket(address: address, path: "/v1/ws")
            try goodReason.send(.close, [0x03, 0xE8] + Array("done ✓".utf8))
            let polite = try RawWebSocket(address: address, path: "/v1/ws")
            try polite.send(text: #"{"op":"bye"}"#)
            return [
                try reserved.receiveSkippingPings(), try badCode.receiveSkippingPings(),
                try polite.receiveSkippingPings(), try polite.receiveSkippingPings(),
                try badReason.receiveSkippingPings(), try goodReason.receiveSkippingPings(),
            ]
        }
        #expect(closes[0]?.opcode == 0x8 && closes[0]?.closeCode == 1002)
        #expect(closes[1]?.opcode == 0x8 && closes[1]?.closeCode == 1002)
        // RFC 6455 §8.1: a close reason that is not UTF-8 fails the connection with 1007; a UTF-8 one is
        // answered with the code it came with.
        #expect(closes[4]?.opcode == 0x8 && closes[4]?.closeCode == 1007)
        #expect(closes[5]?.opcode == 0x8 && closes[5]?.closeCode == 1000)
        // `bye` ends the session with a normal close, then the end of the stream.
        #expect(closes[2]?.opcode == 0x8 && closes[2]?.closeCode == 1000)
        #expect(closes[3] == nil)
        try await broker.stop()
    }

    @Test func onlyV1WsUpgradesOtherPathsAreServedAsHTTP() async throws {
        let broker = try await Self.start()
        let upgrade = [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]
        let health = try await broker.http().request("GET", "/healthz", headers: upgrade)
        #expect(health.status == 200)
        #expect(health.text.contains("ok"))
        // /v1/ws without the WebSocket headers: 400 without a key, 426 naming version 13 for another version.
        let keyless = try await broker.http().request(
            "GET", "/v1/ws", headers: [("Connection", "Upgrade"), ("Upgrade", "websocket")])
        #expect(keyless.status == 400)
        #expect(keyless.json?["error"] != nil)
        // An upgrade is a GET, with a 16-byte key.
        #expect(try await broker.http().request("POST", "/v1/ws?topics=a", headers: upgrade).status == 405)
        let badKey = upgrade.map { $0.0 == "Sec-WebSocket-Key" ? ($0.0, "x") : $0 }
        #expect(try await broker.http().request("GET", "/v1/ws?topics=a", headers: badKey).status == 400)
        // More patterns than a subscribe takes: refused before the upgrade, as a bad pattern is.
        let tooMany = (0...64).map { "t\($0)" }.joined(separator: ",")
        let crowded = try await broker.http().request("GET", "/v1/ws?topics=\(tooMany)", headers: upgrade)
        #expect(crowded.status == 400)
        #expect(crowded.text.contains("topics: must hold 1 to 64 patterns"))
        // A parameter given twice is refused, not resolved by taking the first.
        let twice = try await broker.http().request("GET", "/v1/ws?topics=qa&topics=qb", headers: upgrade)
        #expect(twice.status == 400)
        #expect(twice.text.contains("topics: given more than once in the query"))
        let version8 = try await broker.http().request(
            "GET", "/v1/ws",
            headers: [
                ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "8"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ])
        #expect(version8.status == 426)
        #expect(version8.header("sec-websocket-version") == "13")
        try await broker.stop()
    }

    @Test func anUnmaskedFrameClosesTheSocketWith1002() async throws {
        let broker = try await Self.start()
        let address = broker.gateway!.address
        let frames = try await onOwnThread { () throws -> [RawWebSocket.Frame?] in
            let socket = try RawWebSocket(address: address, path: "/v1/ws")
            try socket.send(.text, Array(#"{"op":"ping","id":1}"#.utf8), masked: false)
            return [try socket.receiveSkippingPings(), try socket.receiveSkippingPings()]
        }
        // Not answered as a ping: closed, as RFC 6455 §5.1 requires.
        #expect(frames[0]?.opcode == 0x8 && frames[0]?.closeCode == 1002)
        #expect(frames[1] == nil)
        try await broker.stop()
    }

    @Test func aSilentSocketIsPingedThenClosed() async throws {
        let broker = try await Self.start { $0.ipc.heartbeatMs = 100 }
        let address = broker.gateway!.address
        let frames = try await onOwnThread { () throws -> [RawWebSocket.Frame] in
            let socket = try RawWebSocket(address: address, path: "/v1/ws")
            var frames: [RawWebSocket.Frame] = []
            while let frame = try socket.receive() { frames.append(frame) }
            return frames
        }
        // Pinged (with no payload) while silent, never anything else, then closed with 1008 and why.
        let pings = frames.dropLast()
        #expect(!pings.isEmpty)
        #expect(pings.allSatisfy { $0 == RawWebSocket.Frame(opcode: 0x9, payload: []) })
        #expect(frames.last?.opcode == 0x8 && frames.last?.closeCode == 1008)
        #expect(
            frames.last.map { String(decoding: $0.payload.dropFirst(2), as: UTF8.self) }
                == "no reply to pings for 300 ms")
        try await broker.stop()
    }

    @Test func stoppingTheBrokerClosesSocketsWith1001() async throws {
        let broker = try await Self.start()
        let socket = try await onOwnThread {
            try RawWebSocket(address: broker.gateway!.address, path: "/v1/ws?topics=a")
        }
        let ok = try await onOwnThread { try socket.receiveSkippingPings() }
        #expect(ok?.text == #"{"op":"ok","subscription":1}"#)
        try await broker.stop()
        let close = try await onOwnThread { try socket.receiveSkippingPings() }
        #expect(close?.opcode == 0x8 && close?.closeCode == 1001)
        #expect(try await onOwnThread { try socket.receiveSkippingPings() } == nil)
    }
}
