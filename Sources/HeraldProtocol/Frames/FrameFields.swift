import HeraldCore

/// The top-level fields of one frame's object (a request the broker reads, or a reply a client reads), as
/// byte ranges of the frame, read on demand: the frame is scanned once, and only the fields needed are parsed.
struct FrameFields {
    let frame: UnsafeBufferPointer<UInt8>
    /// Each field's name and value range, in frame order. An array, not a dictionary: a frame has a handful
    /// of fields, and a linear search of them costs less than hashing.
    private(set) var fields: [(name: String, range: Range<Int>)] = []
    /// The first name given twice, if any.
    private(set) var duplicate: String?
    /// Every name given more than once (usually none: an empty array allocates nothing).
    private var repeated: [String] = []
    /// The first `event` member read as an envelope during the scan, when the frame was scanned with an
    /// envelope form and that member is an object: a publish's event is read in the same pass as its frame,
    /// not skipped over and then read again. Invalid JSON inside it makes the frame a `bad_frame`, as when
    /// it is skipped (the same scanner checks the same bytes).
    private(set) var event: Result<EnvelopeFields, EnvelopeError>?

    /// Scans the frame's object; throws `bad_frame` when it is not one JSON object. With `eventForm`, an
    /// `event` member that is an object is read as an envelope of that form on the way (see `event`).
    /// At most `maximumMembers` members (a request's objects); `nil` for an object keyed by names, such as a
    /// `stats` reply's modules.
    /// With `keepingFirstMembers`, a frame over the limit is not refused here: its first members are kept and
    /// ``isTruncated`` is set, so that the caller can answer with the frame's `id` (and tell a `hello`).
    init(
        frame: UnsafeBufferPointer<UInt8>, eventForm: EnvelopeForm? = nil, maximumMembers: Int? = Self.maximumMembers,
        keepingFirstMembers: Bool = false
    ) throws(ProtocolError) {
        self.frame = frame
        var scanner = JSONScanner(frame)
        guard scanner.peek() == UInt8(ascii: "{") else { throw ProtocolError(.badFrame, "not a JSON object") }
        var fields: [(name: String, range: Range<Int>)] = []
        fields.reserveCapacity(8)
        var repeated: [String] = []
        var event: Result<EnvelopeFields, EnvelopeError>?
        var count = 0
        do throws(JSONSyntaxError) {
            try scanner.readObject { name, scanner throws(JSONSyntaxError) in
                // The search for a repeated name is linear: a frame with thousands of members would cost the
                // connection's event loop (and every connection on it) seconds. No frame of the protocol needs
                // more than a few.
                count += 1
                guard count <= maximumMembers ?? Int.max else {
                    throw JSONSyntaxError(message: Self.tooManyMembers, offset: scanner.position)
                }
                let isFirst = !fields.contains(where: { $0.name == name })
                let range: Range<Int>
                if let eventForm, isFirst, name == "event", scanner.peek() == UInt8(ascii: "{") {
                    let start = scanner.position
                    event = try EnvelopeFields.read(from: &scanner, form: eventForm)
                    range = start..<scanner.position
                } else {
                    range = try scanner.skipValue()
                }
                if isFirst {
                    fields.append((name, range))
                } else if !repeated.contains(name) {
                    repeated.append(name)
                }
            }
            guard scanner.isAtEnd else { throw JSONSyntaxError(message: "trailing bytes", offset: scanner.position) }
        } catch {
            guard error.message == Self.tooManyMembers else {
                throw ProtocolError(.badFrame, "not valid JSON: \(error)")
            }
            guard keepingFirstMembers else { throw Self.tooManyMembersError }
            isTruncated = true
        }
        self.fields = fields
        self.repeated = repeated
        duplicate = repeated.first
        self.event = event
    }

    /// Whether `name` is given more than once.
    func repeats(_ name: String) -> Bool { repeated.contains(name) }

    /// The most members a frame's object (a request, its `module`, its `from`) may have.
    static let maximumMembers = 64
    private static let tooManyMembers = "too many members"
    /// The error for an object with more than ``maximumMembers`` members.
    static let tooManyMembersError = ProtocolError(
        .invalidRequest, "frame: more than \(maximumMembers) members in one object")

    /// Set when the frame had more than `maximumMembers` members and only the first were kept.
    private(set) var isTruncated = false

    /// The frame's `id`, an integer or a string (PROTOCOL.md §2.1), the same way in both directions.
    func requestID() throws(ProtocolError) -> RequestID? {
        guard var scanner = scanner("id") else { return nil }
        if scanner.peek() == UInt8(ascii: "\"") {
            guard let text = try? scanner.readString() else { throw ProtocolError(.badFrame, "id: not valid JSON") }
            // Every reply echoes the id: a longer one could make a reply larger than `max_frame`.
            guard text.utf8.count <= RequestID.maximumBytes else {
                throw .invalidRequest("id", "a string id must be at most \(RequestID.maximumBytes) bytes")
            }
            return .string(text)
        }
        do throws(JSONIntegerError) {
            return .integer(try scanner.readInteger())
        } catch {
            throw .invalidRequest("id", "must be an integer or a string")
        }
    }

    func has(_ name: String) -> Bool { range(name) != nil }

    /// The byte range of field `name`'s value.
    private func range(_ name: String) -> Range<Int>? {
        for field in fields where field.name == name { return field.range }
        return nil
    }

    /// A scanner over the value of field `name`.
    func scanner(_ name: String) -> JSONScanner? {
        range(name).map { JSONScanner(UnsafeBufferPointer(rebasing: frame[$0])) }
    }

    /// The bytes of field `name`'s value.
    func bytes(_ name: String) -> UnsafeBufferPointer<UInt8>? {
        range(name).map { UnsafeBufferPointer(rebasing: frame[$0]) }
    }

    func string(_ name: String, required: Bool = false) throws(ProtocolError) -> String? {
        guard var scanner = scanner(name) else {
            if required { throw .invalidRequest(name, "required") }
            return nil
        }
        guard scanner.peek() == UInt8(ascii: "\"") else { throw .invalidRequest(name, "must be a string") }
        do throws(JSONSyntaxError) {
            return try scanner.readString()
        } catch {
            throw ProtocolError(.badFrame, "not valid JSON: \(error)")
        }
    }

    func integer(_ name: String, in range: ClosedRange<Int64>, required: Bool = false) throws(ProtocolError) -> Int64? {
        guard var scanner = scanner(name) else {
            if required { throw .invalidRequest(name, "required") }
            return nil
        }
        return try Self.integer(&scanner, name, in: range)
    }

    static func integer(_ scanner: inout JSONScanner, _ name: String, in range: ClosedRange<Int64>)
        throws(ProtocolError) -> Int64
    {
        let value: Int64
        do throws(JSONIntegerError) {
            value = try scanner.readInteger()
        } catch .outOfRange {
            throw .invalidRequest(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        } catch {
            throw .invalidRequest(name, "must be an integer")
        }
        guard range.contains(value) else {
            throw .invalidRequest(name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    func bool(_ name: String) throws(ProtocolError) -> Bool? {
        guard var scanner = scanner(name) else { return nil }
        guard let next = scanner.peek(), next == UInt8(ascii: "t") || next == UInt8(ascii: "f") else {
            throw .invalidRequest(name, "must be a boolean")
        }
        do throws(JSONSyntaxError) {
            return try scanner.readBool()
        } catch {
            throw .invalidRequest(name, "must be a boolean")
        }
    }

    /// The elements of array field `name`, each read by `element`.
    func array<Element>(
        _ name: String,
        required: Bool = false,
        _ element: (inout JSONScanner, String) throws(ProtocolError) -> Element
    ) throws(ProtocolError) -> [Element]? {
        guard var scanner = scanner(name) else {
            if required { throw .invalidRequest(name, "required") }
            return nil
        }
        guard scanner.peek() == UInt8(ascii: "[") else { throw .invalidRequest(name, "must be an array") }
        var elements: [Element] = []
        var failure: ProtocolError?
        do throws(JSONSyntaxError) {
            try scanner.readArray { scanner throws(JSONSyntaxError) in
                let range = try scanner.skipValue()
                guard failure == nil else { return }
                // Each element is read from its own bytes, so a failure part-way through one cannot
                // disturb the scan of the array.
                var elementScanner = scanner.scanner(over: range)
                do throws(ProtocolError) {
                    elements.append(try element(&elementScanner, "\(name)[\(elements.count)]"))
                } catch {
                    failure = error
                }
            }
        } catch {
            throw ProtocolError(.badFrame, "not valid JSON: \(error)")
        }
        if let failure { throw failure }
        return elements
    }
}

extension FrameFields {
    /// The names of the object's fields, in frame order.
    var names: [String] { fields.map(\.name) }
}
