/// An envelope's fields before the broker's defaults are applied: what a publisher sent, validated.
///
/// The broker parses a publish into these, checks dedup and appends to the log, and only then seals them
/// into an ``EventEnvelope`` with its producer, offset and partition, so the event is encoded exactly once.
package struct EnvelopeFields: Sendable {
    package static let maximumEventTypeBytes = 255
    package static let maximumEventIDBytes = 128
    package static let maximumKeyBytes = 255

    /// Sets what a publisher may leave out — `event_id` (a random one), `timestamp` (now) and `key` (the
    /// decimal `chain_id`, else `event_type`) — keeping what is set. Sealing applies it; the broker applies
    /// it first when it needs the id or the key before sealing, leaving `timestamp` (`stampingTime: false`)
    /// to be read when the event gets its offset.
    package mutating func applyDefaults(stampingTime: Bool = true) {
        if eventID == nil { eventID = EventID.random() }
        if timestamp == nil && stampingTime { timestamp = Timestamp.now() }
        if key == nil { key = chainID.map { String($0) } ?? eventType }
    }

    package var eventType: String
    package var eventID: String?
    package var timestamp: String?
    package var chainID: Int64?
    package var key: String?
    package var payload: RawJSON?
    package var metadata: EventEnvelope.Metadata = [:]
    package var offset: Int64?
    package var partition: Int?

    package init(eventType: String) {
        self.eventType = eventType
    }

    /// Checks every rule of PROTOCOL.md §1 that the field values (not their JSON form) can break.
    package func validate() throws(EnvelopeError) {
        try Self.validateEventType(eventType)
        if let eventID {
            guard !eventID.isEmpty else { throw EnvelopeError(field: "event_id", "must not be empty") }
            guard eventID.utf8.count <= Self.maximumEventIDBytes else {
                throw EnvelopeError(field: "event_id", "longer than \(Self.maximumEventIDBytes) bytes")
            }
        }
        if let timestamp, Timestamp.millisecondsSinceEpoch(timestamp) == nil {
            throw EnvelopeError(
                field: "timestamp", "must be an RFC 3339 UTC timestamp such as 2026-11-23T08:00:00.123Z")
        }
        if let chainID, chainID < 0 {
            throw EnvelopeError(field: "chain_id", "must be an integer from 0 to 9223372036854775807")
        }
        if let key, key.utf8.count > Self.maximumKeyBytes {
            throw EnvelopeError(field: "key", "longer than \(Self.maximumKeyBytes) bytes")
        }
        if let offset, offset < 0 { throw EnvelopeError(field: "offset", "must not be negative") }
        if let partition, partition < 0 { throw EnvelopeError(field: "partition", "must not be negative") }
    }

    /// Checks an `event_type`: lowercase words `[a-z0-9_]+` joined by `.`, 1 to 255 bytes, no wildcards.
    package static func validateEventType(_ eventType: String) throws(EnvelopeError) {
        let field = "event_type"
        let utf8 = eventType.utf8
        guard !utf8.isEmpty else { throw EnvelopeError(field: field, "must not be empty") }
        guard utf8.count <= maximumEventTypeBytes else {
            throw EnvelopeError(field: field, "longer than \(maximumEventTypeBytes) bytes")
        }
        var previous = UInt8(ascii: ".")
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                break
            case UInt8(ascii: "."):
                if previous == UInt8(ascii: ".") {
                    throw EnvelopeError(field: field, "empty word: '.' must separate two words")
                }
            case UInt8(ascii: "*"), UInt8(ascii: "#"):
                throw EnvelopeError(field: field, "must not contain wildcards ('*' or '#')")
            default:
                throw EnvelopeError(
                    field: field,
                    "invalid character \(describe(byte)): words are lowercase letters, digits and '_'"
                )
            }
            previous = byte
        }
        if previous == UInt8(ascii: ".") {
            throw EnvelopeError(field: field, "empty word: '.' must separate two words")
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }
}

extension EnvelopeFields {
    /// Parses one envelope object from JSON text and validates it.
    package init(parsing buffer: UnsafeBufferPointer<UInt8>, form: EnvelopeForm) throws(EnvelopeError) {
        var scanner = JSONScanner(buffer)
        self = try EnvelopeFields(scanning: &scanner, form: form)
        guard scanner.isAtEnd else { throw EnvelopeError(field: "", "trailing bytes after the envelope") }
    }

    /// Reads one envelope object at the scanner's position (inside a larger frame, say) and validates it.
    package init(scanning scanner: inout JSONScanner, form: EnvelopeForm) throws(EnvelopeError) {
        let result: Result<EnvelopeFields, EnvelopeError>
        do throws(JSONSyntaxError) {
            result = try Self.read(from: &scanner, form: form)
        } catch {
            throw .malformed(error)
        }
        self = try result.get()
    }

    /// Reads one envelope object at the scanner's position, keeping the two kinds of failure apart: JSON
    /// that is not valid is thrown (the scan cannot go on), an envelope that is valid JSON but breaks §1 is
    /// returned, the whole object consumed (the scan of a larger frame goes on past it).
    package static func read(from scanner: inout JSONScanner, form: EnvelopeForm) throws(JSONSyntaxError)
        -> Result<EnvelopeFields, EnvelopeError>
    {
        guard scanner.peek() == UInt8(ascii: "{") else {
            return .failure(EnvelopeError(field: "", "must be a JSON object"))
        }
        var eventType: String?
        var fields = EnvelopeFields(eventType: "")
        // The known fields seen so far, one bit each, for duplicate detection (an unknown field is refused
        // the first time it appears).
        var seen: UInt16 = 0
        var failure: EnvelopeError?
        try scanner.readObject { name, scanner throws(JSONSyntaxError) in
            guard failure == nil else {
                try scanner.skipValue()
                return
            }
            guard let field = Field(name: name) else {
                try scanner.skipValue()
                failure = .unknownField(name)
                return
            }
            guard seen & field.bit == 0 else {
                failure = .duplicateField(name)
                try scanner.skipValue()
                return
            }
            seen |= field.bit
            failure = try fields.read(field, named: name, from: &scanner, form: form, eventType: &eventType)
        }
        if let failure { return .failure(failure) }
        guard let eventType else { return .failure(.required("event_type")) }
        fields.eventType = eventType
        do throws(EnvelopeError) {
            try fields.validate()
        } catch {
            return .failure(error)
        }
        return .success(fields)
    }

    /// The fields an envelope may have (PROTOCOL.md §1).
    private enum Field: UInt16 {
        case eventType, eventID, timestamp, key, chainID, payload, metadata, offset, partition

        init?(name: String) {
            switch name {
            case "event_type": self = .eventType
            case "event_id": self = .eventID
            case "timestamp": self = .timestamp
            case "key": self = .key
            case "chain_id": self = .chainID
            case "payload": self = .payload
            case "metadata": self = .metadata
            case "offset": self = .offset
            case "partition": self = .partition
            default: return nil
            }
        }

        var bit: UInt16 { 1 << rawValue }
    }

    /// Reads the value of `field` (`name` in the JSON); returns the envelope error it breaks, if any, having
    /// consumed it.
    private mutating func read(
        _ field: Field,
        named name: String,
        from scanner: inout JSONScanner,
        form: EnvelopeForm,
        eventType: inout String?
    ) throws(JSONSyntaxError) -> EnvelopeError? {
        func string(_ field: String) throws(JSONSyntaxError) -> Result<String, EnvelopeError> {
            guard scanner.peek() == UInt8(ascii: "\"") else {
                try scanner.skipValue()
                return .failure(.wrongType(field, expected: "a string"))
            }
            return .success(try scanner.readString())
        }
        func integer(_ field: String, range: String) throws(JSONSyntaxError) -> Result<Int64, EnvelopeError> {
            do throws(JSONIntegerError) {
                return .success(try scanner.readNonNegativeInteger())
            } catch .notANumber {
                // Not a number at all: nothing was consumed, so pass over whatever value is there.
                try scanner.skipValue()
                return .failure(.wrongType(field, expected: "an integer"))
            } catch .notAnInteger {
                return .failure(.wrongType(field, expected: "an integer"))
            } catch .malformed(let error) {
                throw error
            } catch {
                return .failure(EnvelopeError(field: field, "must be an integer from \(range)"))
            }
        }
        switch field {
        case .eventType:
            switch try string(name) {
            case .success(let value): eventType = value
            case .failure(let error): return error
            }
        case .eventID:
            switch try string(name) {
            case .success(let value): eventID = value
            case .failure(let error): return error
            }
        case .timestamp:
            switch try string(name) {
            case .success(let value): timestamp = value
            case .failure(let error): return error
            }
        case .key:
            switch try string(name) {
            case .success(let value): key = value
            case .failure(let error): return error
            }
        case .chainID:
            switch try integer(name, range: "0 to 9223372036854775807") {
            case .success(let value): chainID = value
            case .failure(let error): return error
            }
        case .payload:
            let range = try scanner.skipValue()
            payload = RawJSON(unchecked: scanner.copyBytes(in: range))
        case .metadata:
            guard scanner.peek() == UInt8(ascii: "{") else {
                try scanner.skipValue()
                return .wrongType(name, expected: "an object of string values")
            }
            var failure: EnvelopeError?
            var metadata = EventEnvelope.Metadata()
            try scanner.readObject { entry, scanner throws(JSONSyntaxError) in
                guard failure == nil else {
                    try scanner.skipValue()
                    return
                }
                guard scanner.peek() == UInt8(ascii: "\"") else {
                    failure = .wrongType("metadata.\(entry)", expected: "a string")
                    try scanner.skipValue()
                    return
                }
                let value = try scanner.readString()
                if metadata.updateValue(value, forKey: entry) != nil { failure = .duplicateField("metadata.\(entry)") }
            }
            if let failure { return failure }
            self.metadata = metadata
        case .offset, .partition:
            guard form == .delivered else {
                // Ignored on publish (PROTOCOL.md §1): the log assigns them.
                try scanner.skipValue()
                return nil
            }
            switch try integer(name, range: "0 to 9223372036854775807") {
            case .success(let value):
                if field == .offset { offset = value } else { partition = Int(value) }
            case .failure(let error): return error
            }
        }
        return nil
    }
}
