import HeraldCore

/// One broker-to-client frame (PROTOCOL.md §2.3), as a client reads it.
///
/// An `event` frame keeps the event's bytes as they came; the client decides whether and how to parse them.
package enum ServerFrame: Sendable, Equatable {
    case welcome(Welcome)
    case ok(id: RequestID?, Reply)
    case pong(id: RequestID?)
    /// The broker's heartbeat; the client answers `pong`.
    case ping
    case error(ProtocolError)
    case event(subscription: UInt64, seq: UInt64, attempt: Int?, event: [UInt8])

    /// The `welcome` that answers `hello`.
    package struct Welcome: Sendable, Equatable {
        package var id: RequestID?
        package var session: String
        package var serverName: String
        package var serverVersion: String
        package var maxFrame: Int
        package var heartbeatMs: Int
    }

    /// What an `ok` carries besides its `id`; which fields are set depends on the request it answers.
    package struct Reply: Sendable, Equatable {
        package var subscription: UInt64?
        package var eventID: String?
        package var duplicate: Bool?
        package var offset: Int64?
        package var partition: Int?
        package var stats: [String: DeliveryStatistics]?
        package var subscribers: [String]?

        package init() {}
    }

    /// Parses one frame's JSON; a frame that breaks §2.3 is a `ProtocolError` naming what is wrong.
    package static func parse(_ frame: UnsafeBufferPointer<UInt8>) throws(ProtocolError) -> ServerFrame {
        let fields = try FrameFields(frame: frame)
        let id = try fields.requestID()
        switch try fields.string("op", required: true)! {
        case "event":
            guard let event = fields.bytes("event") else { throw .invalidRequest("event", "required") }
            let attempt = try fields.integer("attempt", in: 1...Int64(Int32.max))
            return .event(
                subscription: UInt64(try fields.integer("subscription", in: 1...Int64.max, required: true)!),
                seq: UInt64(try fields.integer("seq", in: 1...Int64.max, required: true)!),
                attempt: attempt.map { Int($0) },
                event: Array(event)
            )
        case "ok":
            return .ok(id: id, try reply(fields))
        case "pong":
            return .pong(id: id)
        case "ping":
            return .ping
        case "error":
            return .error(
                ProtocolError(
                    ErrorCode(wire: try fields.string("code", required: true)!),
                    try fields.string("message", required: true)!,
                    requestID: id,
                    eventID: try fields.string("event_id")
                )
            )
        case "welcome":
            guard let server = fields.bytes("server") else { throw .invalidRequest("server", "required") }
            let serverFields = try FrameFields(frame: server)
            return .welcome(
                Welcome(
                    id: id,
                    session: try fields.string("session", required: true)!,
                    serverName: try serverFields.string("name", required: true)!,
                    serverVersion: try serverFields.string("version", required: true)!,
                    maxFrame: Int(try fields.integer("max_frame", in: 1...Int64(Int32.max), required: true)!),
                    heartbeatMs: Int(try fields.integer("heartbeat_ms", in: 1...Int64(Int32.max), required: true)!)
                )
            )
        case let op:
            throw ProtocolError(.unknownOp, "op: '\(op)' is not a frame a broker sends")
        }
    }

    /// Parses a frame held in an array.
    package static func parse(_ frame: [UInt8]) throws(ProtocolError) -> ServerFrame {
        try frame.withUnsafeBufferPointer { buffer throws(ProtocolError) in try parse(buffer) }
    }

    private static func reply(_ fields: FrameFields) throws(ProtocolError) -> Reply {
        var reply = Reply()
        reply.subscription = try fields.integer("subscription", in: 1...Int64.max).map { UInt64($0) }
        reply.eventID = try fields.string("event_id")
        reply.duplicate = try fields.bool("duplicate")
        reply.offset = try fields.integer("offset", in: 0...Int64.max)
        reply.partition = try fields.integer("partition", in: 0...Int64(Int32.max)).map { Int($0) }
        reply.subscribers = try fields.array("subscribers") { scanner, name throws(ProtocolError) in
            do throws(JSONSyntaxError) {
                return try scanner.readString()
            } catch {
                throw .invalidRequest(name, "must be a string")
            }
        }
        if let stats = fields.bytes("stats") {
            let modules = try FrameFields(frame: stats, maximumMembers: nil)
            var all: [String: DeliveryStatistics] = [:]
            for name in modules.names {
                let counts = try FrameFields(frame: modules.bytes(name)!)
                var statistics = DeliveryStatistics()
                statistics.successful = UInt64(try counts.integer("successful", in: 0...Int64.max, required: true)!)
                statistics.failed = UInt64(try counts.integer("failed", in: 0...Int64.max, required: true)!)
                statistics.channelFull = UInt64(
                    try counts.integer("channel_full", in: 0...Int64.max, required: true)!)
                all[name] = statistics
            }
            reply.stats = all
        }
        return reply
    }
}
