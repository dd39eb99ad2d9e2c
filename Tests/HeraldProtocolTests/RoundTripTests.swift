import HeraldCore
import Testing

@testable import HeraldProtocol

/// What a client writes the broker reads back as meant, and what the broker writes a client reads back.
struct RoundTripTests {
    /// The frames of `bytes`, without their length prefixes.
    private func frames(_ bytes: [UInt8]) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var index = 0
        while index < bytes.count {
            let length = FrameLength.read(bytes[index...])!
            frames.append(Array(bytes[(index + 4)..<(index + 4 + length)]))
            index += 4 + length
        }
        return frames
    }

    @Test func requestsReadBackAsWritten() throws {
        var writer = RequestWriter()
        writer.hello(id: .integer(1), module: "fee-oracle", version: "1.2", instance: "a", token: "t\"k")
        writer.subscribe(id: .string("s"), topics: ["block.#", "#.138"], buffer: 5, overflow: .dropOldest)
        let envelope = try EventEnvelope(eventType: "fee.estimate", eventID: "e", chainID: 7)
        writer.publish(id: nil, envelope: envelope)
        writer.unsubscribe(id: .integer(2), subscription: 9)
        writer.stats(id: .integer(3), module: "indexer")
        writer.subscribers(id: .integer(4), eventType: "block.new")
        writer.ready(id: .integer(5))
        writer.ping(id: .integer(6))
        writer.pong()
        writer.bye(id: nil)
        let requests = try frames(writer.take()).map { try ClientRequest.parse($0).get() }
        #expect(requests.count == 10)

        guard case .hello(let hello) = requests[0].operation else { throw Failure("not hello") }
        #expect(hello == .init(moduleName: "fee-oracle", moduleVersion: "1.2", instance: "a", token: "t\"k"))
        guard case .subscribe(let subscribe) = requests[1].operation else { throw Failure("not subscribe") }
        #expect(requests[1].id == .string("s"))
        #expect(subscribe.topics == [try TopicPattern("block.#"), try TopicPattern("#.138")])
        #expect(subscribe.buffer == 5 && subscribe.overflow == .dropOldest)
        guard case .publish(let fields) = requests[2].operation else { throw Failure("not publish") }
        #expect(requests[2].id == nil)
        #expect(EventEnvelope(sealing: fields) == envelope)
        guard case .unsubscribe(9) = requests[3].operation else { throw Failure("not unsubscribe") }
        guard case .stats("indexer") = requests[4].operation else { throw Failure("not stats") }
        guard case .subscribers("block.new") = requests[5].operation else { throw Failure("not subscribers") }
        guard case .ready = requests[6].operation, case .ping = requests[7].operation,
            case .pong = requests[8].operation, case .bye = requests[9].operation
        else { throw Failure("not ready, ping, pong, bye") }
    }

    @Test func brokerFramesReadBackAsWritten() throws {
        var writer = FrameWriter()
        writer.welcome(
            id: .integer(1), session: "s-7", serverName: "herald", serverVersion: "0.1.0", maxFrame: 4096,
            heartbeatMs: 100)
        let envelope = try EventEnvelope(eventType: "block.new", chainID: 138)
        writer.event(subscription: 3, seq: 42, attempt: 2, envelope: envelope)
        writer.ok(id: .integer(2), subscription: 3)
        writer.ok(id: .integer(3), eventID: "e", duplicate: true, offset: 41, partition: 2)
        writer.ok(
            id: .integer(4),
            stats: ["a": DeliveryStatistics(successful: 1, failed: 2, channelFull: 3), "b": DeliveryStatistics()])
        writer.ok(id: .string("x"), subscribers: ["b", "a"])
        writer.error(ProtocolError(.rateLimited, "slow down", eventID: "e-9"))
        writer.ping()
        writer.pong(id: .integer(5))
        let read = try frames(writer.take()).map { try ServerFrame.parse($0) }

        #expect(
            read[0]
                == .welcome(
                    .init(
                        id: .integer(1), session: "s-7", serverName: "herald", serverVersion: "0.1.0", maxFrame: 4096,
                        heartbeatMs: 100)))
        #expect(read[1] == .event(subscription: 3, seq: 42, attempt: 2, event: envelope.json))
        var subscribed = ServerFrame.Reply()
        subscribed.subscription = 3
        #expect(read[2] == .ok(id: .integer(2), subscribed))
        var published = ServerFrame.Reply()
        published.eventID = "e"
        published.duplicate = true
        published.offset = 41
        published.partition = 2
        #expect(read[3] == .ok(id: .integer(3), published))
        var stats = ServerFrame.Reply()
        stats.stats = ["a": DeliveryStatistics(successful: 1, failed: 2, channelFull: 3), "b": DeliveryStatistics()]
        #expect(read[4] == .ok(id: .integer(4), stats))
        var subscribers = ServerFrame.Reply()
        subscribers.subscribers = ["a", "b"]
        #expect(read[5] == .ok(id: .string("x"), subscribers))
        #expect(read[6] == .error(ProtocolError(.rateLimited, "slow down", eventID: "e-9")))
        #expect(read[7] == .ping)
        #expect(read[8] == .pong(id: .integer(5)))
    }

    @Test func anUnknownErrorCodeIsKeptAsItCame() throws {
        let frame = try ServerFrame.parse(Array(#"{"op":"error","code":"future_code","message":"m"}"#.utf8))
        #expect(frame == .error(ProtocolError(ErrorCode(wire: "future_code"), "m")))
        #expect(ErrorCode(wire: "rate_limited") == .rateLimited)
        #expect(!ErrorCode(wire: "future_code").closesConnection)
    }

    @Test(arguments: [
        #"{"op":"teleport"}"#, #"{"op":"event","subscription":1,"seq":1}"#, #"[1]"#,
        #"{"op":"welcome","session":"s"}"#,
    ])
    func aFrameNoBrokerSendsIsRefused(_ text: String) {
        #expect(throws: ProtocolError.self) { try ServerFrame.parse(Array(text.utf8)) }
    }

    struct Failure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }
}
