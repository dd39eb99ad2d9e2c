import HeraldCore
import Testing

@testable import HeraldProtocol

@Suite struct ClientRequestTests {
    private func parse(_ json: String) -> Result<ClientRequest, ProtocolError> {
        ClientRequest.parse(Array(json.utf8))
    }

    private func request(_ json: String) throws -> ClientRequest {
        try parse(json).get()
    }

    private func failure(_ json: String) -> ProtocolError? {
        if case .failure(let error) = parse(json) { return error }
        return nil
    }

    // MARK: Every operation of §2.2

    @Test func parsesHello() throws {
        let parsed = try request(
            ##"{"op":"hello","id":1,"protocol":1,"module":{"name":"fee-oracle","version":"1.0.0","instance":"a"},"token":"t"}"##
        )
        #expect(parsed.id == .integer(1))
        guard case .hello(let hello) = parsed.operation else { throw Failure("not hello") }
        #expect(hello == .init(moduleName: "fee-oracle", moduleVersion: "1.0.0", instance: "a", token: "t"))
    }

    @Test func anObjectWithMoreMembersThanAnyRequestNeedsIsRefused() throws {
        let many = (0..<65).map { #""k\#($0)":1"# }.joined(separator: ",")
        // The frame itself, and the objects inside it that are read as frames (refused as that field).
        for (frame, message) in [
            (#"{"op":"ping","id":1,"# + many + "}", "frame: more than 64 members in one object"),
            (#"{"op":"hello","protocol":1,"module":{"name":"m","version":"1","# + many + "}}", "module: "),
            (##"{"op":"subscribe","topics":["#"],"group":"g","from":{"## + many + "}}", "from: "),
        ] {
            guard case .failure(let error) = ClientRequest.parse(Array(frame.utf8)) else {
                Issue.record("accepted: \(frame.prefix(60))")
                continue
            }
            #expect(error.code == .invalidRequest)
            #expect(error.message.hasPrefix(message), "\(error.message)")
        }
        // The error names the request: its `id`, read among the members before the limit.
        guard case .failure(let named) = ClientRequest.parse(Array((#"{"op":"ping","id":7,"# + many + "}").utf8)) else {
            Issue.record("accepted")
            return
        }
        #expect(named.requestID == .integer(7))
        // 64 are fine (unknown members are ignored).
        let enough = (0..<62).map { #""k\#($0)":1"# }.joined(separator: ",")
        guard case .success = ClientRequest.parse(Array((#"{"op":"ping","id":1,"# + enough + "}").utf8)) else {
            Issue.record("64 members refused")
            return
        }
    }

    @Test func errorRepliesFitInTheSmallestFrameWhateverTheRequestHeld() throws {
        let huge = String(repeating: "x", count: 100_000)
        // An id longer than 255 bytes is refused, and not echoed.
        guard case .failure(let longID) = ClientRequest.parse(Array(#"{"op":"ping","id":"\#(huge)"}"#.utf8)) else {
            Issue.record("a 100 000-byte id was accepted")
            return
        }
        #expect(longID.requestID == nil)
        #expect(longID.message == "id: a string id must be at most 255 bytes")
        let longest = String(repeating: "i", count: 255)
        guard case .success(let ping) = ClientRequest.parse(Array(#"{"op":"ping","id":"\#(longest)"}"#.utf8)) else {
            Issue.record("a 255-byte id was refused")
            return
        }
        #expect(ping.id == .string(longest))
        // Whatever is quoted back — an op, a pattern, an event id — the frame stays small.
        for frame in [
            #"{"op":"\#(huge)","id":1}"#,
            #"{"op":"subscribe","id":1,"topics":["\#(huge)"]}"#,
            #"{"op":"publish","event":{"event_type":"x","event_id":"\#(huge)"}}"#,
        ] {
            guard case .failure(let error) = ClientRequest.parse(Array(frame.utf8)) else {
                Issue.record("accepted: \(frame.prefix(40))")
                continue
            }
            var writer = FrameWriter()
            writer.error(error)
            #expect(writer.bytes.count < 2048, "\(error.code): \(writer.bytes.count) bytes")
        }
    }

    @Test func parsesSubscribeWithEveryOption() throws {
        let live = try request(
            ##"{"op":"subscribe","id":"s0","topics":["block.new.*"],"buffer":500,"overflow":"drop_oldest"}"##)
        guard case .subscribe(let bounded) = live.operation else { throw Failure("not subscribe") }
        #expect(bounded.buffer == 500)
        #expect(bounded.overflow == .dropOldest)
        #expect(bounded.group == nil)
        let parsed = try request(
            ##"{"op":"subscribe","id":"s1","topics":["block.new.*","#.138"],"group":"indexer","from":{"offset":41},"max_in_flight":10,"ack_wait_ms":5000}"##
        )
        #expect(parsed.id == .string("s1"))
        guard case .subscribe(let subscribe) = parsed.operation else { throw Failure("not subscribe") }
        #expect(subscribe.topics.map(\.text) == ["block.new.*", "#.138"])
        #expect(subscribe.group == "indexer")
        #expect(subscribe.from == .offset(41))
        #expect(subscribe.maxInFlight == 10)
        #expect(subscribe.ackWaitMs == 5000)
    }

    @Test(arguments: [
        (##""latest""##, ClientRequest.StartPosition.latest),
        (##""earliest""##, .earliest),
        (##"{"offset":0}"##, .offset(0)),
        (##"{"time":"2026-11-23T08:00:00.123Z"}"##, .time(millisecondsSinceEpoch: 1_795_420_800_123)),
    ])
    func parsesStartPositions(_ from: String, _ expected: ClientRequest.StartPosition) throws {
        let parsed = try request(##"{"op":"subscribe","topics":["#"],"group":"g","from":"## + from + "}")
        guard case .subscribe(let subscribe) = parsed.operation else { throw Failure("not subscribe") }
        #expect(subscribe.from == expected)
    }

    @Test func parsesALiveSubscribeWithDefaults() throws {
        guard case .subscribe(let subscribe) = try request(##"{"op":"subscribe","topics":["#"]}"##).operation else {
            throw Failure("not subscribe")
        }
        #expect(subscribe == .init(topics: [try TopicPattern("#")]))
    }

    @Test func parsesPublish() throws {
        let parsed = try request(
            ##"{"op":"publish","id":9,"event":{"event_type":"block.new","chain_id":138,"payload":{"n":1}}}"##
        )
        guard case .publish(let fields) = parsed.operation else { throw Failure("not publish") }
        #expect(fields.eventType == "block.new")
        #expect(fields.chainID == 138)
        #expect(fields.payload?.description == ##"{"n":1}"##)
    }

    @Test func parsesTheOtherOperations() throws {
        #expect(try describe(##"{"op":"unsubscribe","subscription":7}"##) == "unsubscribe 7")
        #expect(try describe(##"{"op":"ready"}"##) == "ready")
        #expect(try describe(##"{"op":"ack","subscription":3,"seq":[1,2,5]}"##) == "ack 3 [1, 2, 5]")
        #expect(
            try describe(##"{"op":"nack","subscription":3,"seq":4,"delay_ms":250,"dead_letter":true}"##)
                == "nack 3 4 250 true"
        )
        #expect(try describe(##"{"op":"nack","subscription":3,"seq":4}"##) == "nack 3 4 nil false")
        #expect(try describe(##"{"op":"stats"}"##) == "stats nil")
        #expect(try describe(##"{"op":"stats","module":"indexer"}"##) == "stats indexer")
        // Statistics are also kept under names that are not modules' (a WebSocket's `ws:<token name>`).
        #expect(try describe(##"{"op":"stats","module":"ws:anonymous"}"##) == "stats ws:anonymous")
        #expect(try describe(##"{"op":"subscribers","event_type":"block.new"}"##) == "subscribers block.new")
        #expect(try describe(##"{"op":"ping"}"##) == "ping")
        #expect(try describe(##"{"op":"pong"}"##) == "pong")
        #expect(try describe(##"{"op":"bye","unknown_field":1}"##) == "bye")
    }

    private func describe(_ json: String) throws -> String {
        switch try request(json).operation {
        case .unsubscribe(let subscription): "unsubscribe \(subscription)"
        case .ready: "ready"
        case .ack(let subscription, let seqs): "ack \(subscription) \(seqs)"
        case .nack(let nack):
            "nack \(nack.subscription) \(nack.seq) \(nack.delayMs.map(String.init) ?? "nil") \(nack.deadLetter)"
        case .stats(let module): "stats \(module ?? "nil")"
        case .subscribers(let eventType): "subscribers \(eventType)"
        case .ping: "ping"
        case .pong: "pong"
        case .bye: "bye"
        default: "other"
        }
    }

    // MARK: Every error of §2.4 that a frame alone can cause

    @Test(arguments: [
        ("not json", ErrorCode.badFrame, "not a JSON object", nil as RequestID?),
        (##"{"op":"ping""##, .badFrame, "not valid JSON: expected ',' or '}' at byte 12", nil),
        ("[]", .badFrame, "not a JSON object", nil),
        ("{}", .badFrame, "op: required", nil),
        (##"{"op":1,"id":3}"##, .badFrame, "op: must be a string", .integer(3)),
        (##"{"op":"fly","id":"a"}"##, .unknownOp, "op: unknown operation 'fly'", .string("a")),
        (##"{"op":"ping","id":1.5}"##, .invalidRequest, "id: must be an integer or a string", nil),
        (##"{"op":"ping","id":2,"op":"pong"}"##, .invalidRequest, "op: appears more than once", .integer(2)),
        // hello
        (
            ##"{"op":"hello","id":1,"protocol":2,"module":{"name":"m","version":"1"}}"##, .unsupportedProtocol,
            "protocol: 2 is not supported; this broker speaks 1", .integer(1)
        ),
        (##"{"op":"hello","module":{"name":"m","version":"1"}}"##, .invalidRequest, "protocol: required", nil),
        (
            ##"{"op":"hello","protocol":"1","module":{"name":"m","version":"1"}}"##, .invalidRequest,
            "protocol: must be an integer", nil
        ),
        (##"{"op":"hello","protocol":1}"##, .invalidRequest, "module: required", nil),
        (##"{"op":"hello","protocol":1,"module":"m"}"##, .invalidRequest, "module: must be an object", nil),
        (##"{"op":"hello","protocol":1,"module":{"version":"1"}}"##, .invalidRequest, "module.name: required", nil),
        (
            ##"{"op":"hello","protocol":1,"module":{"name":"Fee Oracle","version":"1"}}"##, .invalidRequest,
            "module.name: must be 1 to 64 of a-z, 0-9, '_' and '-'", nil
        ),
        (
            ##"{"op":"hello","protocol":1,"module":{"name":"herald","version":"1"}}"##, .invalidRequest,
            "module.name: 'herald' is the broker's own name", nil
        ),
        (
            ##"{"op":"hello","protocol":1,"module":{"name":"a","name":"b","version":"1"}}"##, .invalidRequest,
            "module.name: appears more than once", nil
        ),
        (
            ##"{"op":"hello","protocol":1,"module":{"name":"m","version":""}}"##, .invalidRequest,
            "module.version: must be 1 to 64 bytes", nil
        ),
        (
            ##"{"op":"hello","protocol":1,"module":{"name":"m","version":2}}"##, .invalidRequest,
            "module.version: must be a string", nil
        ),
        (
            ##"{"op":"hello","protocol":1,"module":{"name":"m","version":"1"},"token":5}"##, .invalidRequest,
            "token: must be a string", nil
        ),
        // subscribe
        (##"{"op":"subscribe"}"##, .invalidRequest, "topics: required", nil),
        (##"{"op":"subscribe","topics":[]}"##, .invalidRequest, "topics: must hold 1 to 64 patterns", nil),
        (##"{"op":"subscribe","topics":"#"}"##, .invalidRequest, "topics: must be an array", nil),
        (##"{"op":"subscribe","topics":["#",1]}"##, .invalidRequest, "topics[1]: must be a string", nil),
        (
            ##"{"op":"subscribe","id":5,"topics":["block.*x"]}"##, .invalidTopic,
            "pattern 'block.*x': '*' and '#' must be whole words", .integer(5)
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"buffer":0}"##, .invalidRequest,
            "buffer: must be an integer from 1 to 100000", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"buffer":100001}"##, .invalidRequest,
            "buffer: must be an integer from 1 to 100000", nil
        ),
        (##"{"op":"subscribe","topics":["#"],"buffer":"big"}"##, .invalidRequest, "buffer: must be an integer", nil),
        (
            ##"{"op":"subscribe","topics":["#"],"overflow":"drop_all"}"##, .invalidRequest,
            ##"overflow: must be "drop_newest" or "drop_oldest""##, nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"from":"earliest"}"##, .invalidRequest, "from: only applies with group",
            nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"max_in_flight":5}"##, .invalidRequest,
            "max_in_flight: only applies with group", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","buffer":5}"##, .invalidRequest,
            "buffer: only applies without group (a group member takes max_in_flight)", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","overflow":"drop_oldest"}"##, .invalidRequest,
            "overflow: only applies without group (a group member takes max_in_flight)", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"Bad!"}"##, .invalidRequest,
            "group: must be 1 to 64 of a-z, 0-9, '_' and '-'", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","from":"now"}"##, .invalidRequest,
            ##"from: must be "latest", "earliest", {"offset": n} or {"time": "RFC 3339"}"##, nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","from":{"offset":-1}}"##, .invalidRequest,
            "from.offset: must be an integer from 0 to 9223372036854775807", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","from":{"offset":1,"offset":2}}"##, .invalidRequest,
            "from.offset: appears more than once", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","from":{"time":"soon"}}"##, .invalidRequest,
            "from.time: must be an RFC 3339 timestamp", nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","from":{"offset":1,"time":"2026-11-23T08:00:00Z"}}"##,
            .invalidRequest, ##"from: must be "latest", "earliest", {"offset": n} or {"time": "RFC 3339"}"##, nil
        ),
        (
            ##"{"op":"subscribe","topics":["#"],"group":"g","ack_wait_ms":0}"##, .invalidRequest,
            "ack_wait_ms: must be an integer from 1 to 86400000", nil
        ),
        // publish
        (##"{"op":"publish"}"##, .invalidRequest, "event: required", nil),
        (
            ##"{"op":"publish","id":8,"event":{"event_type":""}}"##, .invalidEvent, "event_type: must not be empty",
            .integer(8)
        ),
        (##"{"op":"publish","event":[]}"##, .invalidEvent, "must be a JSON object", nil),
        // The event is read in the frame's own pass: what is wrong inside it keeps its code and message.
        (##"{"event":{"event_type":"a","colour":1},"op":"publish"}"##, .invalidEvent, "colour: unknown field", nil),
        (
            ##"{"op":"publish","event":{"event_type":"a","event_type":"b"}}"##, .invalidEvent,
            "event_type: appears more than once", nil
        ),
        (##"{"op":"publish","event":{"payload":{}}}"##, .invalidEvent, "event_type: required", nil),
        (
            ##"{"op":"publish","event":{"event_type":"a","payload":{"x" 1}}}"##, .badFrame,
            "not valid JSON: expected ':' at byte 57", nil
        ),
        (
            ##"{"op":"publish","event":{"event_type":"a"},"event":{"event_type":"b"}}"##, .invalidRequest,
            "event: appears more than once", nil
        ),
        // the rest
        (##"{"op":"unsubscribe"}"##, .invalidRequest, "subscription: required", nil),
        (
            ##"{"op":"unsubscribe","subscription":0}"##, .invalidRequest,
            "subscription: must be an integer from 1 to 9223372036854775807", nil
        ),
        (##"{"op":"ack","subscription":1,"seq":[]}"##, .invalidRequest, "seq: must not be empty", nil),
        (
            ##"{"op":"ack","subscription":1,"seq":[1,0]}"##, .invalidRequest,
            "seq[1]: must be an integer from 1 to 9223372036854775807", nil
        ),
        (##"{"op":"ack","subscription":1,"seq":3}"##, .invalidRequest, "seq: must be an array", nil),
        (##"{"op":"nack","subscription":1}"##, .invalidRequest, "seq: required", nil),
        (
            ##"{"op":"nack","subscription":1,"seq":1,"dead_letter":"yes"}"##, .invalidRequest,
            "dead_letter: must be a boolean", nil
        ),
        (
            ##"{"op":"stats","module":""}"##, .invalidRequest,
            "module: must be 1 to 255 bytes: a module's name or a name such as ws:anonymous", nil
        ),
        (##"{"op":"subscribers"}"##, .invalidRequest, "event_type: required", nil),
        (
            ##"{"op":"subscribers","event_type":"block.#"}"##, .invalidRequest,
            "event_type: must not contain wildcards ('*' or '#')", nil
        ),
    ])
    func rejectsWithTheRightCode(_ json: String, _ code: ErrorCode, _ message: String, _ id: RequestID?) {
        let error = failure(json)
        #expect(error?.code == code, "\(json)")
        #expect(error?.message == message, "\(json)")
        #expect(error?.requestID == id, "\(json)")
    }

    @Test func anEventMemberOfAnotherOperationIsNotJudged() throws {
        // Read in the same pass as the frame, but only a publish's event is checked as an envelope.
        #expect(try describe(##"{"op":"ping","event":{"event_type":"Bad"}}"##) == "ping")
    }

    @Test func aFailedPublishWithoutIdNamesItsEvent() {
        let error = failure(##"{"op":"publish","event":{"event_type":"Bad","event_id":"e-7"}}"##)
        #expect(error?.code == .invalidEvent)
        #expect(error?.eventID == "e-7")
        // With an id, the id identifies it.
        let withID = failure(##"{"op":"publish","id":3,"event":{"event_type":"Bad","event_id":"e-7"}}"##)
        #expect(withID?.eventID == nil)
        #expect(withID?.requestID == .integer(3))
    }

    @Test func subscribeAcceptsSixtyFourTopicsButNotSixtyFive() throws {
        func topics(_ count: Int) -> String {
            "[" + (0..<count).map { "\"t\($0)\"" }.joined(separator: ",") + "]"
        }
        #expect(throws: Never.self) { try request(##"{"op":"subscribe","topics":"## + topics(64) + "}") }
        #expect(
            failure(##"{"op":"subscribe","topics":"## + topics(65) + "}")?.message
                == "topics: must hold 1 to 64 patterns")
    }

    @Test func connectionClosingCodesAreTheFourOfTheTable() {
        let closing: [ErrorCode] = [.frameTooLarge, .handshakeRequired, .unsupportedProtocol, .unauthorized]
        let open: [ErrorCode] = [
            .badFrame, .invalidRequest, .invalidEvent, .invalidTopic, .forbidden, .unknownOp, .unknownSubscription,
            .rateLimited, .tooManySubscriptions, .shuttingDown,
        ]
        #expect(closing.allSatisfy { $0.closesConnection })
        #expect(!open.contains { $0.closesConnection })
        #expect((closing + open).map(\.description).count == Set((closing + open).map(\.description)).count)
    }

    @Test func frameLengthsAreBigEndianAndBounded() {
        #expect(FrameLength.read([0x00, 0x01, 0x00, 0x02]) == 65538)
        #expect(FrameLength.read([0x00, 0x01]) == nil)
        #expect(FrameLength.validate(0, maximum: 1024)?.code == .frameTooLarge)
        #expect(FrameLength.validate(1025, maximum: 1024)?.code == .frameTooLarge)
        #expect(FrameLength.validate(1, maximum: 1024) == nil)
        #expect(FrameLength.validate(1024, maximum: 1024) == nil)
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

@Suite struct ClientRequestFuzzTests {
    static let seeds = [
        ##"{"op":"hello","id":1,"protocol":1,"module":{"name":"fee-oracle","version":"1.0.0"},"token":"t"}"##,
        ##"{"op":"subscribe","id":"s","topics":["block.new.*","#.138"],"buffer":5,"group":"g","from":{"time":"2026-11-23T08:00:00Z"}}"##,
        ##"{"op":"publish","event":{"event_type":"block.new","event_id":"e","chain_id":1,"payload":[1,{"a":null}]}}"##,
        ##"{"op":"ack","subscription":3,"seq":[1,2,3]}"##,
        ##"{"op":"nack","subscription":3,"seq":4,"delay_ms":5,"dead_letter":true}"##,
    ]

    /// Whatever a client sends, parsing gives a request or a `ProtocolError` with a code and a message.
    @Test func mutatedFramesParseOrFailCleanly() {
        var state: UInt64 = 11
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let alphabet = Array(##"{}[]:,"\.-0123456789 aeflnrstu#*_"##.utf8) + [0x00, 0xC3, 0xFF]
        var parsed = 0
        var failed = 0
        for round in 0..<20_000 {
            var bytes = Array(Self.seeds[round % Self.seeds.count].utf8)
            for _ in 0..<(1 + next(4)) {
                let position = next(bytes.count)
                switch next(3) {
                case 0: bytes[position] = alphabet[next(alphabet.count)]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[next(alphabet.count)], at: position)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            switch ClientRequest.parse(bytes) {
            case .success: parsed += 1
            case .failure(let error):
                #expect(!error.message.isEmpty)
                failed += 1
            }
        }
        #expect(parsed > 500)
        #expect(failed > 5_000)
    }
}
