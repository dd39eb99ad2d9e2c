import HeraldCore

extension ClientRequest {
    /// Parses one frame's JSON object. Errors carry the request's `id` when it could be read, and, for a
    /// publish without `id`, the event's `event_id` when it had one (PROTOCOL.md §2.2, §9).
    package static func parse(_ frame: UnsafeBufferPointer<UInt8>) -> Result<ClientRequest, ProtocolError> {
        let fields: FrameFields
        do throws(ProtocolError) {
            fields = try FrameFields(frame: frame, eventForm: .published, keepingFirstMembers: true)
        } catch {
            return .failure(error)
        }
        let id: RequestID?
        do throws(ProtocolError) {
            id = try fields.requestID()
        } catch {
            return .failure(error)
        }
        if fields.isTruncated {
            var error = FrameFields.tooManyMembersError
            error.requestID = id
            return .failure(error)
        }
        do throws(ProtocolError) {
            return .success(ClientRequest(id: id, operation: try operation(fields, id: id)))
        } catch {
            var error = error
            error.requestID = id
            if id == nil, case .invalidEvent = error.code, let bytes = fields.bytes("event") {
                error.eventID = eventID(in: bytes)
            }
            return .failure(error)
        }
    }

    /// The `op` of a frame that may not parse as a request (`nil` when it has none, has it twice or is not a
    /// JSON object): what a connection that has not said hello tells a bad `hello` from a frame that is not
    /// one.
    package static func operationName(of frame: UnsafeBufferPointer<UInt8>) -> String? {
        guard let fields = try? FrameFields(frame: frame, keepingFirstMembers: true), !fields.repeats("op") else {
            return nil
        }
        return try? fields.string("op")
    }

    /// The name the broker publishes under (`metadata.producer` of its own events), which no module may take.
    package static let brokerName = "herald"

    /// Parses a frame held in an array.
    package static func parse(_ frame: [UInt8]) -> Result<ClientRequest, ProtocolError> {
        frame.withUnsafeBufferPointer { parse($0) }
    }

    private static func operation(_ fields: FrameFields, id: RequestID?) throws(ProtocolError) -> Operation {
        guard fields.has("op") else { throw ProtocolError(.badFrame, "op: required") }
        guard let op = try? fields.string("op") else { throw ProtocolError(.badFrame, "op: must be a string") }
        if let duplicate = fields.duplicate { throw .invalidRequest(duplicate, "appears more than once") }
        switch op {
        case "hello": return .hello(try hello(fields))
        case "subscribe": return .subscribe(try subscribe(fields))
        case "unsubscribe": return .unsubscribe(subscription: try subscription(fields))
        case "publish": return .publish(try publish(fields))
        case "ready": return .ready
        case "ack":
            let seqs = try fields.array("seq", required: true) { scanner, name throws(ProtocolError) in
                UInt64(try FrameFields.integer(&scanner, name, in: 1...Int64.max))
            }
            guard let seqs, !seqs.isEmpty else { throw .invalidRequest("seq", "must not be empty") }
            return .ack(subscription: try subscription(fields), seqs: seqs)
        case "nack":
            return .nack(
                Nack(
                    subscription: try subscription(fields),
                    seq: UInt64(try fields.integer("seq", in: 1...Int64.max, required: true)!),
                    delayMs: try fields.integer("delay_ms", in: 0...86_400_000),
                    deadLetter: try fields.bool("dead_letter") ?? false
                )
            )
        case "stats":
            // Any name statistics are kept under: a module's, and also a WebSocket's `ws:<token name>` (§7).
            // One never seen is the broker's `invalid_request`; here only its length is checked.
            let module = try fields.string("module")
            if let module, !(1...255).contains(module.utf8.count) {
                throw .invalidRequest(
                    "module", "must be 1 to 255 bytes: a module's name or a name such as ws:anonymous")
            }
            return .stats(module: module)
        case "subscribers":
            let eventType = try fields.string("event_type", required: true)!
            do throws(EnvelopeError) {
                try EnvelopeFields.validateEventType(eventType)
            } catch {
                throw ProtocolError(.invalidRequest, error.description)
            }
            return .subscribers(eventType: eventType)
        case "ping": return .ping
        case "pong": return .pong
        case "bye": return .bye
        default:
            let quoted = op.unicodeScalars.count <= 64 ? op : String(op.unicodeScalars.prefix(64)) + "…"
            throw ProtocolError(.unknownOp, "op: unknown operation '\(quoted)'")
        }
    }

    private static func hello(_ fields: FrameFields) throws(ProtocolError) -> Hello {
        let version = try fields.integer("protocol", in: Int64.min...Int64.max, required: true)!
        guard version == 1 else {
            throw ProtocolError(.unsupportedProtocol, "protocol: \(version) is not supported; this broker speaks 1")
        }
        guard let moduleBytes = fields.bytes("module") else { throw .invalidRequest("module", "required") }
        let module: FrameFields
        do throws(ProtocolError) {
            module = try FrameFields(frame: moduleBytes)
        } catch {
            throw .invalidRequest("module", "must be an object")
        }
        if let duplicate = module.duplicate { throw .invalidRequest("module.\(duplicate)", "appears more than once") }
        let name = try prefixed("module", module.string("name", required: true))!
        try validateModuleName(name, field: "module.name")
        // The broker's own name: what it publishes carries it as `metadata.producer`, and a module's events
        // would pass for the broker's (and the RabbitMQ bridge passes those over).
        if name == brokerName { throw .invalidRequest("module.name", "'\(brokerName)' is the broker's own name") }
        let moduleVersion = try prefixed("module", module.string("version", required: true))!
        guard !moduleVersion.isEmpty, moduleVersion.utf8.count <= 64 else {
            throw .invalidRequest("module.version", "must be 1 to 64 bytes")
        }
        let instance = try prefixed("module", module.string("instance"))
        if let instance, instance.isEmpty || instance.utf8.count > 64 {
            throw .invalidRequest("module.instance", "must be 1 to 64 bytes")
        }
        return Hello(
            moduleName: name, moduleVersion: moduleVersion, instance: instance, token: try fields.string("token"))
    }

    /// Rewrites `field: problem` errors of a nested object as `outer.field: problem`.
    private static func prefixed<T>(_ outer: String, _ value: @autoclosure () throws(ProtocolError) -> T)
        throws(ProtocolError) -> T
    {
        do throws(ProtocolError) {
            return try value()
        } catch {
            var error = error
            if error.code == .invalidRequest { error.message = "\(outer).\(error.message)" }
            throw error
        }
    }

    private static func subscribe(_ fields: FrameFields) throws(ProtocolError) -> Subscribe {
        let topics = try fields.array("topics", required: true) { scanner, name throws(ProtocolError) in
            guard scanner.peek() == UInt8(ascii: "\""), let text = try? scanner.readString() else {
                throw .invalidRequest(name, "must be a string")
            }
            do throws(TopicPatternError) {
                return try TopicPattern(text)
            } catch {
                throw ProtocolError(.invalidTopic, error.description)
            }
        }!
        guard (1...maximumTopics).contains(topics.count) else {
            throw .invalidRequest("topics", "must hold 1 to \(maximumTopics) patterns")
        }
        let buffer = try fields.integer(
            "buffer",
            in: Int64(EventBus.bufferRange.lowerBound)...Int64(EventBus.bufferRange.upperBound)
        )
        var overflow: OverflowPolicy?
        if let name = try fields.string("overflow") {
            guard let policy = OverflowPolicy(wireName: name) else {
                throw .invalidRequest("overflow", "must be \"drop_newest\" or \"drop_oldest\"")
            }
            overflow = policy
        }
        let group = try fields.string("group")
        if let group { try validateModuleName(group, field: "group") }
        let from = try startPosition(fields)
        let maxInFlight = try fields.integer("max_in_flight", in: 1...100_000)
        let ackWaitMs = try fields.integer("ack_wait_ms", in: 1...86_400_000)
        if group == nil {
            // These shape a durable subscription; on a live one they would silently mean nothing.
            for field in ["from", "max_in_flight", "ack_wait_ms"] where fields.has(field) {
                throw .invalidRequest(field, "only applies with group")
            }
        } else {
            // A durable subscription has no queue to bound: it reads the log, `max_in_flight` at a time.
            for field in ["buffer", "overflow"] where fields.has(field) {
                throw .invalidRequest(field, "only applies without group (a group member takes max_in_flight)")
            }
        }
        return Subscribe(
            topics: topics,
            buffer: buffer.map { Int($0) },
            overflow: overflow,
            group: group,
            from: from,
            maxInFlight: maxInFlight.map { Int($0) },
            ackWaitMs: ackWaitMs.map { Int($0) }
        )
    }

    private static func startPosition(_ fields: FrameFields) throws(ProtocolError) -> StartPosition? {
        guard var scanner = fields.scanner("from") else { return nil }
        let shape = #"must be "latest", "earliest", {"offset": n} or {"time": "RFC 3339"}"#
        if scanner.peek() == UInt8(ascii: "\"") {
            switch try? scanner.readString() {
            case "latest": return .latest
            case "earliest": return .earliest
            default: throw .invalidRequest("from", shape)
            }
        }
        guard let bytes = fields.bytes("from"), let object = try? FrameFields(frame: bytes),
            object.fields.count == 1
        else { throw .invalidRequest("from", shape) }
        if let duplicate = object.duplicate { throw .invalidRequest("from.\(duplicate)", "appears more than once") }
        if object.has("offset") {
            return .offset(try prefixed("from", object.integer("offset", in: 0...Int64.max))!)
        }
        if object.has("time") {
            let text = try prefixed("from", object.string("time"))!
            guard let milliseconds = Timestamp.millisecondsSinceEpoch(text, anyOffset: true) else {
                throw .invalidRequest("from.time", "must be an RFC 3339 timestamp")
            }
            return .time(millisecondsSinceEpoch: milliseconds)
        }
        throw .invalidRequest("from", shape)
    }

    private static func subscription(_ fields: FrameFields) throws(ProtocolError) -> UInt64 {
        UInt64(try fields.integer("subscription", in: 1...Int64.max, required: true)!)
    }

    private static func publish(_ fields: FrameFields) throws(ProtocolError) -> EnvelopeFields {
        guard let bytes = fields.bytes("event") else { throw .invalidRequest("event", "required") }
        do throws(EnvelopeError) {
            if let event = fields.event { return try event.get() }
            return try EnvelopeFields(parsing: bytes, form: .published)
        } catch {
            throw .invalidEvent(error)
        }
    }

    /// The `event_id` of an event object that failed validation, if it has a readable one.
    private static func eventID(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let event = try? FrameFields(frame: bytes) else { return nil }
        return try? event.string("event_id")
    }

    /// Module and group names: 1 to 64 of `[a-z0-9_-]`.
    static func validateModuleName(_ name: String, field: String) throws(ProtocolError) {
        guard isValidModuleName(name) else { throw .invalidRequest(field, "must be 1 to 64 of a-z, 0-9, '_' and '-'") }
    }

    /// Whether `name` is a module name: 1 to 64 of `a-z`, `0-9`, `_` and `-` (also what a `module.toml`'s
    /// `name` must be).
    package static func isValidModuleName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
    }
}
