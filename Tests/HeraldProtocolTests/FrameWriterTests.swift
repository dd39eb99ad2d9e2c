import HeraldCore
import Testing

@testable import HeraldProtocol

@Suite struct FrameWriterTests {
    /// Splits a buffer of frames into their JSON texts, checking every length prefix on the way.
    private func frames(_ bytes: [UInt8]) -> [String] {
        var texts: [String] = []
        var index = 0
        while index < bytes.count {
            let length = FrameLength.read(bytes[index...])!
            texts.append(String(decoding: bytes[(index + 4)..<(index + 4 + length)], as: UTF8.self))
            index += 4 + length
        }
        #expect(index == bytes.count)
        return texts
    }

    @Test func eventFramesSpliceTheStoredEnvelopeWithKeysInOrder() throws {
        let envelope = try EventEnvelope(
            eventType: "block.new",
            eventID: "e1",
            timestamp: "2026-11-23T08:00:00.123Z",
            chainID: 138
        )
        var writer = FrameWriter()
        writer.event(subscription: 7, seq: 42, envelope: envelope)
        writer.event(subscription: 7, seq: 43, attempt: 2, envelope: envelope)
        let json = String(decoding: envelope.json, as: UTF8.self)
        #expect(
            frames(writer.bytes) == [
                ##"{"op":"event","subscription":7,"seq":42,"event":"## + json + "}",
                ##"{"op":"event","subscription":7,"seq":43,"attempt":2,"event":"## + json + "}",
            ]
        )
    }

    @Test func welcomeMatchesTheProtocolExample() {
        var writer = FrameWriter()
        writer.welcome(
            id: .integer(1),
            session: "s-7",
            serverName: "herald",
            serverVersion: "0.1.0",
            maxFrame: 1_048_576,
            heartbeatMs: 10000
        )
        #expect(
            frames(writer.bytes) == [
                ##"{"op":"welcome","id":1,"protocol":1,"session":"s-7","server":{"name":"herald","version":"0.1.0"},"max_frame":1048576,"heartbeat_ms":10000}"##
            ]
        )
    }

    @Test func repliesCarryTheRequestID() {
        var writer = FrameWriter()
        writer.ok(id: .string("a\"b"))
        writer.ok(id: .integer(2), subscription: 9)
        writer.ok(id: .integer(3), eventID: "e", duplicate: false, offset: 41, partition: 3)
        writer.ok(id: .integer(4), eventID: "e", duplicate: true, offset: nil, partition: nil)
        writer.ok(id: nil, stats: ["b": DeliveryStatistics(successful: 1), "a": DeliveryStatistics(channelFull: 2)])
        writer.ok(id: .integer(6), subscribers: ["indexer", "cache"])
        writer.pong(id: .integer(7))
        writer.ping()
        #expect(
            frames(writer.bytes) == [
                ##"{"op":"ok","id":"a\"b"}"##,
                ##"{"op":"ok","id":2,"subscription":9}"##,
                ##"{"op":"ok","id":3,"event_id":"e","duplicate":false,"offset":41,"partition":3}"##,
                ##"{"op":"ok","id":4,"event_id":"e","duplicate":true}"##,
                ##"{"op":"ok","stats":{"a":{"successful":0,"failed":0,"channel_full":2},"b":{"successful":1,"failed":0,"channel_full":0}}}"##,
                ##"{"op":"ok","id":6,"subscribers":["cache","indexer"]}"##,
                ##"{"op":"pong","id":7}"##,
                ##"{"op":"ping"}"##,
            ]
        )
    }

    @Test func errorsCarryCodeMessageIdAndEventID() {
        var writer = FrameWriter()
        writer.error(ProtocolError(.invalidEvent, "event_type: must not be empty", requestID: .integer(4)))
        writer.error(ProtocolError(.invalidEvent, "event_type: must not be empty", eventID: "e-7"))
        #expect(
            frames(writer.bytes) == [
                ##"{"op":"error","id":4,"code":"invalid_event","message":"event_type: must not be empty"}"##,
                ##"{"op":"error","code":"invalid_event","message":"event_type: must not be empty","event_id":"e-7"}"##,
            ]
        )
    }

    @Test func takeEmptiesTheBuffer() {
        var writer = FrameWriter()
        writer.ping()
        #expect(frames(writer.take()) == [##"{"op":"ping"}"##])
        #expect(writer.bytes.isEmpty)
    }

    /// What the broker writes, a client parses back: the event frame's envelope is the stored one.
    @Test func anEventFrameParsesBackToItsEnvelope() throws {
        let envelope = try EventEnvelope(eventType: "x", chainID: 1, payload: try RawJSON(validating: "[1,2]"))
            .stored(offset: 5, partition: 2)
        var writer = FrameWriter()
        writer.event(subscription: 1, seq: 1, envelope: envelope)
        let body = Array(writer.bytes.dropFirst(4))
        let prefix = Array(##"{"op":"event","subscription":1,"seq":1,"event":"##.utf8)
        #expect(Array(body.prefix(prefix.count)) == prefix)
        let eventBytes = Array(body[prefix.count..<(body.count - 1)])
        #expect(try EventEnvelope(json: eventBytes, form: .delivered) == envelope)
    }
}
