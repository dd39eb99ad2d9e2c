import Synchronization

/// One event as PROTOCOL.md §1 defines it: validated, with every default applied, and encoded once.
///
/// The JSON form (`json`) is produced by whichever thread needs it first and kept (threads asking at the
/// same moment may each encode it; one result is kept): every delivery of the event, to any number of
/// subscribers, splices these bytes instead of encoding again. Its size is
/// known from the moment the envelope is made (``encodedSize``), so that the broker can check it, and the
/// log queue the event, without encoding on the publisher's event loop: the log's writer thread or a
/// subscriber's loop encodes it (docs/benchmarks.md, "Fifteenth session"). Copying an envelope copies one
/// reference.
public struct EventEnvelope: Sendable, Hashable, CustomStringConvertible {
    /// The type of `metadata`: string values in publish order.
    public typealias Metadata = EventMetadata

    private let storage: Storage

    /// The event's type, such as `block.new`.
    public var eventType: String { storage.fields.eventType }
    /// The event's id: as published, or a UUID v4 the broker assigned.
    public var eventID: String { storage.fields.eventID }
    /// RFC 3339 UTC: as published, or the time of acceptance with millisecond precision.
    public var timestamp: String { storage.fields.timestamp }
    /// The chain the event belongs to, when published with one.
    public var chainID: Int64? { storage.fields.chainID }
    /// The partition key: as published, else the decimal `chainID`, else `eventType`.
    public var key: String { storage.fields.key }
    /// The payload, byte-for-byte as published.
    public var payload: RawJSON? { storage.fields.payload }
    /// String metadata; the broker sets `producer` when it is absent.
    public var metadata: Metadata { storage.fields.metadata }
    /// The event's offset in its partition of the durable log, when it was stored.
    public var offset: Int64? { storage.fields.offset }
    /// The durable log partition the event was stored in, when it was stored.
    public var partition: Int? { storage.fields.partition }
    /// The routing key: `eventType`, or `eventType.chainID` (`block.new.138`).
    public var topic: String { storage.topic }
    /// The envelope's JSON text, encoded once, when first asked for.
    public var json: [UInt8] { storage.json }
    /// The size of ``json`` in bytes, known without encoding it.
    public var encodedSize: Int { storage.encodedSize }
    /// Whether ``json`` was made already (for tests).
    package var hasJSON: Bool { storage.hasJSON }
    /// When the envelope was made: for an event the broker accepted, the moment of acceptance, from which
    /// its deliveries' latency is measured. Not part of the event (not encoded, not compared).
    package var sealedAt: ContinuousClock.Instant { storage.sealedAt }

    /// Makes an envelope from its fields, validating each and applying the defaults of PROTOCOL.md §1.
    public init(
        eventType: String,
        eventID: String? = nil,
        timestamp: String? = nil,
        chainID: Int64? = nil,
        key: String? = nil,
        payload: RawJSON? = nil,
        metadata: Metadata = [:]
    ) throws(EnvelopeError) {
        var fields = EnvelopeFields(eventType: eventType)
        fields.eventID = eventID
        fields.timestamp = timestamp
        fields.chainID = chainID
        fields.key = key
        fields.payload = payload
        fields.metadata = metadata
        try fields.validate()
        self.init(sealing: fields)
    }

    /// Parses and validates an envelope from its JSON text.
    ///
    /// In the `.published` form `offset` and `partition` are ignored, as a publish must; in the
    /// `.delivered` form (what a subscriber receives) they are kept.
    ///
    /// A delivered envelope must carry `event_id`, `timestamp` and `key`, which the broker always sets; they
    /// are never invented on the receiving side.
    public init(json: [UInt8], form: EnvelopeForm = .published) throws(EnvelopeError) {
        let fields = try json.withUnsafeBufferPointer { buffer throws(EnvelopeError) in
            try EnvelopeFields(parsing: buffer, form: form)
        }
        if form == .delivered {
            if fields.eventID == nil { throw .required("event_id") }
            if fields.timestamp == nil { throw .required("timestamp") }
            if fields.key == nil { throw .required("key") }
        }
        self.init(sealing: fields)
    }

    /// Applies the defaults still missing and seals the fields; their JSON is made when first asked for
    /// (``json``), by ``Storage``'s encoder: the one place an envelope's JSON is produced.
    /// `topic`, when the caller has it already (the broker routes by it before it seals), is not made again.
    package init(sealing fields: EnvelopeFields, topic: String? = nil) {
        var fields = fields
        fields.applyDefaults()
        storage = Storage(fields: Sealed(fields), topic: topic)
    }

    /// The fields this envelope was sealed from, for building another envelope from them.
    package var fields: EnvelopeFields { storage.fields.unsealed }

    /// The same event as stored in the durable log at `offset` of `partition`.
    public func stored(offset: Int64, partition: Int) -> EventEnvelope {
        precondition(offset >= 0 && partition >= 0, "the log assigns non-negative offsets and partitions")
        var fields = storage.fields.unsealed
        fields.offset = offset
        fields.partition = partition
        return EventEnvelope(sealing: fields)
    }

    /// The same event with `metadata.producer` set to `producer`, unless the publisher already set one.
    public func producedBy(_ producer: String) -> EventEnvelope {
        guard metadata["producer"] == nil else { return self }
        var fields = storage.fields.unsealed
        fields.metadata["producer"] = producer
        return EventEnvelope(sealing: fields)
    }

    public var description: String { String(decoding: json, as: UTF8.self) }

    public static func == (lhs: EventEnvelope, rhs: EventEnvelope) -> Bool {
        lhs.storage === rhs.storage || lhs.storage.json == rhs.storage.json
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.json)
    }
}

/// Which JSON form of an envelope is being read.
public enum EnvelopeForm: Sendable {
    /// What a publisher sends: `offset` and `partition` are ignored if present.
    case published
    /// What a subscriber receives: `offset` and `partition` are kept.
    case delivered
}

extension EventEnvelope {
    /// The fields with every default applied; immutable once made.
    struct Sealed: Sendable {
        let eventType: String
        let eventID: String
        let timestamp: String
        let chainID: Int64?
        let key: String
        let payload: RawJSON?
        let metadata: Metadata
        let offset: Int64?
        let partition: Int?

        init(_ fields: EnvelopeFields) {
            eventType = fields.eventType
            eventID = fields.eventID!
            timestamp = fields.timestamp!
            chainID = fields.chainID
            key = fields.key!
            payload = fields.payload
            metadata = fields.metadata
            offset = fields.offset
            partition = fields.partition
        }

        var unsealed: EnvelopeFields {
            var fields = EnvelopeFields(eventType: eventType)
            fields.eventID = eventID
            fields.timestamp = timestamp
            fields.chainID = chainID
            fields.key = key
            fields.payload = payload
            fields.metadata = metadata
            fields.offset = offset
            fields.partition = partition
            return fields
        }
    }

    final class Storage: Sendable {
        let fields: Sealed
        let topic: String
        /// The size of the JSON text ``encode(_:capacity:)`` makes.
        let encodedSize: Int
        /// When the envelope was sealed (the broker seals an event once, when it accepts it).
        let sealedAt = ContinuousClock.now
        /// The JSON text once made. Two threads asking at once may both encode it; the first stored is kept.
        private let encoded = AtomicLazyReference<Encoded>()

        private final class Encoded: Sendable {
            let bytes: [UInt8]

            init(_ bytes: [UInt8]) {
                self.bytes = bytes
            }
        }

        init(fields: Sealed, topic: String?) {
            self.fields = fields
            self.topic = topic ?? Topic.of(eventType: fields.eventType, chainID: fields.chainID)
            encodedSize = Storage.size(fields)
        }

        /// Whether the JSON was made already (for tests).
        var hasJSON: Bool { encoded.load() != nil }

        var json: [UInt8] {
            if let encoded = encoded.load() { return encoded.bytes }
            return encoded.storeIfNil(Encoded(Storage.encode(fields, capacity: encodedSize))).bytes
        }

        /// The bytes ``encode(_:capacity:)`` writes, counted field by field the same way.
        private static func size(_ fields: Sealed) -> Int {
            // `{"event_type":` `,"event_id":` `,"timestamp":` `,"key":` `}`
            var size = 14 + 12 + 13 + 7 + 1
            size += JSONWriter.encodedLength(of: fields.eventType) + JSONWriter.encodedLength(of: fields.eventID)
            size += JSONWriter.encodedLength(of: fields.timestamp) + JSONWriter.encodedLength(of: fields.key)
            if let chainID = fields.chainID { size += 12 + JSONWriter.encodedLength(of: chainID) }
            if let payload = fields.payload { size += 11 + payload.bytes.count }
            if !fields.metadata.isEmpty {
                // `,"metadata":{` `}`, and a `:` per entry and a `,` between entries
                size += 13 + 1 + fields.metadata.count * 2 - 1
                for (name, value) in fields.metadata {
                    size += JSONWriter.encodedLength(of: name) + JSONWriter.encodedLength(of: value)
                }
            }
            if let offset = fields.offset { size += 10 + JSONWriter.encodedLength(of: offset) }
            if let partition = fields.partition { size += 13 + JSONWriter.encodedLength(of: Int64(partition)) }
            return size
        }

        private static func encode(_ fields: Sealed, capacity: Int) -> [UInt8] {
            var writer = JSONWriter(capacity: capacity)
            writer.append(raw: "{\"event_type\":")
            writer.append(string: fields.eventType)
            writer.append(raw: ",\"event_id\":")
            writer.append(string: fields.eventID)
            writer.append(raw: ",\"timestamp\":")
            writer.append(string: fields.timestamp)
            if let chainID = fields.chainID {
                writer.append(raw: ",\"chain_id\":")
                writer.append(integer: chainID)
            }
            writer.append(raw: ",\"key\":")
            writer.append(string: fields.key)
            if let payload = fields.payload {
                writer.append(raw: ",\"payload\":")
                writer.append(raw: payload.bytes)
            }
            if !fields.metadata.isEmpty {
                writer.append(raw: ",\"metadata\":{")
                for (index, (name, value)) in fields.metadata.enumerated() {
                    if index > 0 { writer.append(raw: ",") }
                    writer.append(string: name)
                    writer.append(raw: ":")
                    writer.append(string: value)
                }
                writer.append(raw: "}")
            }
            if let offset = fields.offset {
                writer.append(raw: ",\"offset\":")
                writer.append(integer: offset)
            }
            if let partition = fields.partition {
                writer.append(raw: ",\"partition\":")
                writer.append(integer: partition)
            }
            writer.append(raw: "}")
            return writer.bytes
        }
    }
}

extension EventEnvelope {
    /// Calls `body` with the UTF-8 bytes of a stored envelope's `event_id`, read in place without decoding
    /// or validating the rest (the broker wrote and validated it): what rebuilding the dedup window needs
    /// from each record. `body` is not called when the bytes do not hold an object with a string
    /// `event_id`.
    package static func withEventID(ofStored json: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        if let eventID = plainEventID(ofStored: json) {
            body(eventID)
            return
        }
        var scanner = JSONScanner(json.assumingMemoryBound(to: UInt8.self))
        do throws(JSONSyntaxError) {
            // The broker writes `event_id` second: the payload and what follows are not scanned.
            if try scanner.findMember("event_id"), scanner.peek() == UInt8(ascii: "\"") {
                try scanner.withStringBytes(body)
            }
        } catch {
            // Not an envelope the broker wrote: nothing to remember.
        }
    }
}

extension EventEnvelope {
    /// The `event_id` of a stored envelope that starts as ``Storage`` encodes it, `{"event_type":"…",
    /// "event_id":"…"`, both strings with no escapes and nothing but ASCII from 0x20 on: nearly every event,
    /// and its id found with a few comparisons instead of the scanner (a fifth of rebuilding the dedup
    /// window, when it scanned every record). `nil` for anything else, which the scanner then reads.
    private static func plainEventID(ofStored json: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        func hasBytes(_ literal: StaticString, at position: Int) -> Bool {
            literal.withUTF8Buffer { literal in
                position + literal.count <= json.count
                    && literal.indices.allSatisfy { json[position + $0] == literal[$0] }
            }
        }
        guard hasBytes(#"{"event_type":""#, at: 0),
            let typeEnd = JSONScanner.endOfPlainString(in: json, from: 15),
            hasBytes(#","event_id":""#, at: typeEnd + 1),
            let idEnd = JSONScanner.endOfPlainString(in: json, from: typeEnd + 14)
        else { return nil }
        return UnsafeRawBufferPointer(rebasing: json[(typeEnd + 14)..<idEnd])
    }
}

extension EventEnvelope {
    /// The topic (`event_type` or `event_type.chain_id`) of a stored envelope, read without decoding the
    /// rest: what a consumer group's pattern match needs from each record. `nil` when the bytes do not hold
    /// an object with a string `event_type`.
    package static func topic(ofStored json: [UInt8]) -> String? {
        json.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer)
            var eventType: String?
            var chainID: Int64?
            do throws(JSONSyntaxError) {
                try scanner.readObject { key, value throws(JSONSyntaxError) in
                    switch key {
                    case "event_type": eventType = try value.readString()
                    case "chain_id": chainID = try? value.readInteger()
                    default: _ = try value.skipValue()
                    }
                }
            } catch {
                return nil
            }
            return eventType.map { Topic.of(eventType: $0, chainID: chainID) }
        }
    }
}
