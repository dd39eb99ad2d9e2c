import Testing

@testable import HeraldCore

@Suite struct EventEnvelopeTests {
    private func parse(_ json: String, form: EnvelopeForm = .published) throws(EnvelopeError) -> EventEnvelope {
        try EventEnvelope(json: Array(json.utf8), form: form)
    }

    private func error(_ json: String) -> EnvelopeError? {
        do {
            _ = try parse(json)
            return nil
        } catch {
            return error
        }
    }

    // MARK: Defaults and derived fields

    /// The size the broker checks and the log queues before any JSON is made is the size of the JSON made
    /// later: strings with every kind of escape, multi-byte text, metadata, and every optional field.
    @Test(arguments: [
        #"{"event_type":"a"}"#,
        #"{"event_type":"block.new","event_id":"q\"uote\\back\nnl\rcr\ttab\u0001ctl\u001f","chain_id":0}"#,
        #"{"event_type":"tx","key":"ключ-キー-🔑","timestamp":"2026-11-25T05:00:00.000Z","chain_id":9223372036854775807}"#,
        #"{"event_type":"tx","payload":{"a":[1,2,{"b":null}]},"metadata":{"x":"1","\u0000":"\"","z":""}}"#,
        #"{"event_type":"tx","metadata":{"only":"one"},"payload":"text"}"#,
        "{\"event_type\":\"tx\",\"key\":\"del\u{7F}\",\"chain_id\":7}",
    ])
    func theEncodedSizeIsKnownBeforeEncoding(_ text: String) throws {
        let published = try EventEnvelope(json: Array(text.utf8))
        #expect(published.encodedSize == published.json.count)
        for (offset, partition) in [(Int64(1_234_567_890_123), 7), (0, 0), (9, 1023)] {
            let stored = published.stored(offset: offset, partition: partition)
            #expect(stored.encodedSize == stored.json.count)
        }
        let stored = published.stored(offset: 1, partition: 1)
        let produced = stored.producedBy("módulo \"1\"")
        #expect(produced.encodedSize == produced.json.count)
    }

    @Test func theJSONIsMadeWhenFirstAskedForAndKept() async throws {
        let envelope = try EventEnvelope(eventType: "tx", eventID: "once", payload: try RawJSON(validating: "[1]"))
        #expect(!envelope.hasJSON)
        let encodings = await withTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<8 { group.addTask { envelope.json } }
            return await group.reduce(into: [[UInt8]]()) { $0.append($1) }
        }
        #expect(Set(encodings).count == 1)
        #expect(encodings.allSatisfy { $0 == envelope.json })
        // Kept: every reader got the same buffer (the eight are alive together, so a fresh encoding each
        // time would be eight buffers).
        let buffers = Set(encodings.map { $0.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } })
        #expect(buffers.count == 1)
    }

    @Test func appliesDefaultsOnPublish() throws {
        let envelope = try parse(#"{"event_type":"block.new","chain_id":138,"payload":{"block_number":1}}"#)
        #expect(envelope.eventType == "block.new")
        #expect(envelope.chainID == 138)
        #expect(envelope.topic == "block.new.138")
        #expect(envelope.key == "138")
        #expect(envelope.eventID.utf8.count == 36)
        #expect(Timestamp.millisecondsSinceEpoch(envelope.timestamp) != nil)
        #expect(envelope.timestamp.utf8.count == 24)  // millisecond precision
        #expect(envelope.offset == nil && envelope.partition == nil)
        #expect(envelope.metadata.isEmpty)
    }

    @Test func keyDefaultsToEventTypeWithoutChain() throws {
        let envelope = try parse(#"{"event_type":"notification"}"#)
        #expect(envelope.topic == "notification")
        #expect(envelope.key == "notification")
        #expect(envelope.payload == nil)
    }

    @Test func keepsPublishedFields() throws {
        let envelope = try parse(
            #"{"event_type":"block.new","event_id":"abc","timestamp":"2026-11-23T08:00:00.123Z","chain_id":1,"key":"k","metadata":{"producer":"indexer","version":"1.0"}}"#
        )
        #expect(envelope.eventID == "abc")
        #expect(envelope.timestamp == "2026-11-23T08:00:00.123Z")
        #expect(envelope.key == "k")
        #expect(envelope.metadata["producer"] == "indexer")
        #expect(Array(envelope.metadata.map(\.key)) == ["producer", "version"])
    }

    @Test func keepsThePayloadByteForByte() throws {
        let payload = #"{ "b" : [1, 2.50, "\u00e9"],"a":{} }"#
        let envelope = try parse(#"{"event_type":"x","payload":"# + payload + "}")
        #expect(envelope.payload?.bytes == Array(payload.utf8))
        #expect(String(decoding: envelope.json, as: UTF8.self).contains(payload))
    }

    @Test func ignoresOffsetAndPartitionOnPublishButKeepsThemWhenDelivered() throws {
        let json =
            #"{"event_type":"x","event_id":"e","timestamp":"2026-11-23T08:00:00Z","key":"x","offset":41,"partition":3}"#
        let published = try parse(json)
        #expect(published.offset == nil && published.partition == nil)
        let delivered = try parse(json, form: .delivered)
        #expect(delivered.offset == 41 && delivered.partition == 3)
        // Ignored means ignored: even a wrongly typed offset does not fail a publish.
        #expect(error(#"{"event_type":"x","offset":"soon"}"#) == nil)
    }

    // MARK: The JSON form

    @Test func theDeliveredFormRequiresWhatTheBrokerAlwaysSets() {
        let complete = #""event_type":"x","event_id":"e","timestamp":"2026-11-23T08:00:00Z","key":"k""#
        #expect(throws: Never.self) { try parse("{" + complete + "}", form: .delivered) }
        #expect(throws: EnvelopeError.required("event_id")) {
            try parse(#"{"event_type":"x","timestamp":"2026-11-23T08:00:00Z","key":"k"}"#, form: .delivered)
        }
        #expect(throws: EnvelopeError.required("timestamp")) {
            try parse(#"{"event_type":"x","event_id":"e","key":"k"}"#, form: .delivered)
        }
        #expect(throws: EnvelopeError.required("key")) {
            try parse(#"{"event_type":"x","event_id":"e","timestamp":"2026-11-23T08:00:00Z"}"#, form: .delivered)
        }
    }

    @Test func nullPayloadIsAValueButNullMetadataIsNot() throws {
        let envelope = try parse(#"{"event_type":"x","payload":null}"#)
        #expect(envelope.payload?.description == "null")
        #expect(envelope.description.contains(#""payload":null"#))
        #expect(
            error(#"{"event_type":"x","metadata":null}"#)?.description == "metadata: must be an object of string values"
        )
    }

    @Test func encodesOnceInCanonicalOrder() throws {
        let envelope = try EventEnvelope(
            eventType: "block.new",
            eventID: "id-1",
            timestamp: "2026-11-23T08:00:00.123Z",
            chainID: 138,
            payload: try RawJSON(validating: #"{"block_number":12345}"#),
            metadata: ["producer": "indexer"]
        )
        let expected =
            #"{"event_type":"block.new","event_id":"id-1","timestamp":"2026-11-23T08:00:00.123Z","chain_id":138,"#
            + #""key":"138","payload":{"block_number":12345},"metadata":{"producer":"indexer"}}"#
        #expect(envelope.description == expected)
        let stored = envelope.stored(offset: 41, partition: 3)
        #expect(stored.description == String(expected.dropLast()) + #","offset":41,"partition":3}"#)
        #expect(stored.eventID == envelope.eventID)
    }

    @Test func roundTripsThroughItsJSON() throws {
        let original = try EventEnvelope(
            eventType: "token.transfer",
            eventID: "quote\"and\\slash",
            chainID: 0,
            key: "line\nbreak",
            payload: try RawJSON(validating: "[1,{\"x\":null}]"),
            metadata: ["tab": "a\tb", "unicode": "\u{1F600}"]
        ).stored(offset: 9, partition: 1)
        let parsed = try EventEnvelope(json: original.json, form: .delivered)
        #expect(parsed == original)
        #expect(parsed.eventID == "quote\"and\\slash")
        #expect(parsed.key == "line\nbreak")
        #expect(parsed.metadata["unicode"] == "\u{1F600}")
    }

    @Test func producedBySetsProducerOnlyWhenAbsent() throws {
        let bare = try EventEnvelope(eventType: "x")
        #expect(bare.producedBy("indexer").metadata["producer"] == "indexer")
        let owned = try EventEnvelope(eventType: "x", metadata: ["producer": "node"])
        #expect(owned.producedBy("indexer").metadata["producer"] == "node")
    }

    // MARK: Every rule of PROTOCOL.md §1

    @Test(arguments: [
        // event_type
        (#"{}"#, "event_type: required"),
        (#"{"event_type":""}"#, "event_type: must not be empty"),
        (#"{"event_type":12}"#, "event_type: must be a string"),
        (
            #"{"event_type":"Block.new"}"#,
            "event_type: invalid character 'B': words are lowercase letters, digits and '_'"
        ),
        (
            #"{"event_type":"block-new"}"#,
            "event_type: invalid character '-': words are lowercase letters, digits and '_'"
        ),
        (#"{"event_type":"block.*"}"#, "event_type: must not contain wildcards ('*' or '#')"),
        (#"{"event_type":"block.#"}"#, "event_type: must not contain wildcards ('*' or '#')"),
        (#"{"event_type":".block"}"#, "event_type: empty word: '.' must separate two words"),
        (#"{"event_type":"block."}"#, "event_type: empty word: '.' must separate two words"),
        (#"{"event_type":"block..new"}"#, "event_type: empty word: '.' must separate two words"),
        ("{\"event_type\":\"" + String(repeating: "a", count: 256) + "\"}", "event_type: longer than 255 bytes"),
        // event_id
        (#"{"event_type":"x","event_id":""}"#, "event_id: must not be empty"),
        (#"{"event_type":"x","event_id":7}"#, "event_id: must be a string"),
        (
            "{\"event_type\":\"x\",\"event_id\":\"" + String(repeating: "i", count: 129) + "\"}",
            "event_id: longer than 128 bytes"
        ),
        // timestamp
        (
            #"{"event_type":"x","timestamp":"yesterday"}"#,
            "timestamp: must be an RFC 3339 UTC timestamp such as 2026-11-23T08:00:00.123Z"
        ),
        (
            #"{"event_type":"x","timestamp":"2026-11-23T08:00:00+02:00"}"#,
            "timestamp: must be an RFC 3339 UTC timestamp such as 2026-11-23T08:00:00.123Z"
        ),
        (#"{"event_type":"x","timestamp":1700000000}"#, "timestamp: must be a string"),
        // chain_id
        (#"{"event_type":"x","chain_id":-1}"#, "chain_id: must be an integer from 0 to 9223372036854775807"),
        (
            #"{"event_type":"x","chain_id":9223372036854775808}"#,
            "chain_id: must be an integer from 0 to 9223372036854775807"
        ),
        (#"{"event_type":"x","chain_id":1.5}"#, "chain_id: must be an integer"),
        (#"{"event_type":"x","chain_id":"138"}"#, "chain_id: must be an integer"),
        (#"{"event_type":"x","chain_id":null}"#, "chain_id: must be an integer"),
        // key
        (#"{"event_type":"x","key":1}"#, "key: must be a string"),
        ("{\"event_type\":\"x\",\"key\":\"" + String(repeating: "k", count: 256) + "\"}", "key: longer than 255 bytes"),
        // metadata
        (#"{"event_type":"x","metadata":[]}"#, "metadata: must be an object of string values"),
        (#"{"event_type":"x","metadata":{"a":1}}"#, "metadata.a: must be a string"),
        (#"{"event_type":"x","metadata":{"a":"1","a":"2"}}"#, "metadata.a: appears more than once"),
        // the object
        (#"{"event_type":"x","extra":1}"#, "extra: unknown field"),
        (#"{"event_type":"x","event_type":"y"}"#, "event_type: appears more than once"),
        (#"[]"#, "must be a JSON object"),
        (#"{"event_type":"x"} 1"#, "trailing bytes after the envelope"),
    ])
    func rejectsWithAPreciseMessage(_ json: String, _ message: String) {
        #expect(error(json)?.description == message)
    }

    @Test(arguments: [
        #"{"event_type":"x""#, #"{"event_type":"x","payload":[1,}"#, #"{"event_type":"x",}"#,
        "{\"event_type\":\"x\",\"payload\":tru}",
    ])
    func rejectsMalformedJSON(_ json: String) throws {
        let failure = try #require(error(json))
        #expect(failure.field == "")
        #expect(failure.message.hasPrefix("not valid JSON"))
    }

    @Test func acceptsBoundaryValues() throws {
        let longType = String(repeating: "a", count: 127) + "." + String(repeating: "b", count: 127)
        #expect(longType.utf8.count == 255)
        #expect(throws: Never.self) { try EventEnvelope(eventType: longType) }
        #expect(throws: Never.self) { try EventEnvelope(eventType: "x", eventID: String(repeating: "i", count: 128)) }
        #expect(throws: Never.self) { try EventEnvelope(eventType: "x", key: String(repeating: "k", count: 255)) }
        #expect(throws: Never.self) { try EventEnvelope(eventType: "x", chainID: Int64.max) }
        #expect(throws: Never.self) { try EventEnvelope(eventType: "a_1.b2.c_") }
        #expect(throws: Never.self) { try EventEnvelope(eventType: "x", key: "") }
    }

    @Test func directInitAppliesTheSameRules() {
        #expect(throws: EnvelopeError(field: "chain_id", "must be an integer from 0 to 9223372036854775807")) {
            try EventEnvelope(eventType: "x", chainID: -5)
        }
        #expect(throws: EnvelopeError(field: "event_type", "must not be empty")) { try EventEnvelope(eventType: "") }
        #expect(throws: EnvelopeError.self) { try EventEnvelope(eventType: "x", timestamp: "now") }
    }

    @Test func rawJSONValidatesItsBytes() {
        #expect(throws: Never.self) { try RawJSON(validating: " {\"a\": [1, 2]} ") }
        #expect(throws: EnvelopeError.self) { try RawJSON(validating: "{\"a\":") }
        #expect(throws: EnvelopeError(field: "payload", "trailing bytes after the JSON value")) {
            try RawJSON(validating: "1 2")
        }
    }
}

@Suite struct EventEnvelopeFuzzTests {
    static let seeds = [
        #"{"event_type":"block.new","chain_id":138,"payload":{"block_number":12345,"hash":"0xabc"},"metadata":{"producer":"indexer"}}"#,
        #"{"event_type":"notification","event_id":"n-1","timestamp":"2026-11-23T08:00:00.123Z","key":"k","payload":[1,2.5e3,"\u00e9",null,true,{"a":{}}]}"#,
        #"{"event_type":"x","payload":"\ud83d\ude00 \"quoted\" \\ back","offset":4,"partition":1}"#,
    ]

    /// Whatever bytes arrive, parsing either fails with an `EnvelopeError` or yields an envelope whose own
    /// JSON parses back to an equal envelope: no crash, no half-valid state, no encoding the parser rejects.
    @Test func mutatedEnvelopesParseOrFailCleanly() throws {
        var generator = SplitMix(seed: 7)
        let alphabet =
            Array(#"{}[]:,"\.-+eE0123456789 abtrufnlsx_#*"#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF, 0xED, 0xA0]
        var parsed = 0
        var rejected = 0
        for round in 0..<20_000 {
            var bytes = Array(Self.seeds[round % Self.seeds.count].utf8)
            for _ in 0..<(1 + generator.next(upTo: 4)) {
                let position = generator.next(upTo: bytes.count)
                switch generator.next(upTo: 3) {
                case 0: bytes[position] = alphabet[generator.next(upTo: alphabet.count)]
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet[generator.next(upTo: alphabet.count)], at: position)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            do {
                let envelope = try EventEnvelope(json: bytes)
                let again = try EventEnvelope(json: envelope.json, form: .delivered)
                #expect(again == envelope, "\(String(decoding: bytes, as: UTF8.self))")
                parsed += 1
            } catch {
                #expect(!error.description.isEmpty)
                rejected += 1
            }
        }
        // Both outcomes were exercised, so the test explores the parser rather than one path of it.
        #expect(parsed > 500)
        #expect(rejected > 5_000)
    }

    @Test func truncationsOfAValidEnvelopeAreRejected() throws {
        let bytes = Array(Self.seeds[0].utf8)
        for length in 0..<bytes.count {
            #expect(throws: EnvelopeError.self) { try EventEnvelope(json: Array(bytes[..<length])) }
        }
    }
}

@Suite struct StoredEnvelopeFieldTests {
    /// The id `withEventID(ofStored:)` reads, as a string.
    private func storedEventID(_ json: [UInt8]) -> String? {
        var eventID: String?
        json.withUnsafeBytes { bytes in
            EventEnvelope.withEventID(ofStored: bytes) { eventID = String(decoding: $0, as: UTF8.self) }
        }
        return eventID
    }

    @Test func theEventIDAndTopicOfAStoredEnvelopeAreReadWithoutDecodingTheRest() throws {
        let sealed = try EventEnvelope(
            json: Array(
                #"{"event_type":"block.new","chain_id":138,"event_id":"a\"b","payload":{"event_id":"inner"}}"#.utf8))
        #expect(storedEventID(sealed.json) == #"a"b"#)
        #expect(EventEnvelope.topic(ofStored: sealed.json) == "block.new.138")
        let plain = try EventEnvelope(json: Array(#"{"event_type":"tx","event_id":"t"}"#.utf8))
        #expect(EventEnvelope.topic(ofStored: plain.json) == "tx")
        #expect(storedEventID(Array(#"{"event_type":"tx""#.utf8)) == nil)
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":7}"#.utf8)) == nil)
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":"caf\u00e9"}"#.utf8)) == "caf\u{E9}")
        // Read up to the event_id only: what follows it is not scanned.
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":"e","payload":{"#.utf8)) == "e")
        #expect(EventEnvelope.topic(ofStored: Array("[1]".utf8)) == nil)
    }

    /// Envelopes as the broker writes them are read by a shortcut (`{"event_type":"…","event_id":"…"` with
    /// plain ASCII strings); anything else by the scanner, with the same result.
    @Test func theShortcutAndTheScannerReadTheSameEventID() throws {
        let long = "0123456789abcdef-0123456789abcdef-tail"
        let sealed = try EventEnvelope(json: Array(#"{"event_type":"block.new","event_id":"\#(long)"}"#.utf8))
        #expect(storedEventID(sealed.json) == long)
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":"t"}"#.utf8)) == "t")
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":""}"#.utf8)) == "")
        // Not as the broker writes it: the scanner reads these.
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":"café"}"#.utf8)) == "café")
        #expect(storedEventID(Array(#"{"event_id":"first","event_type":"tx"}"#.utf8)) == "first")
        #expect(storedEventID(Array(#"{"event_type":"t\"x","event_id":"y"}"#.utf8)) == "y")
        #expect(storedEventID(Array(#"{"event_type":"t\u0078","event_id":"y"}"#.utf8)) == "y")
        #expect(storedEventID(Array(#"{"event_type":"té","event_id":"z"}"#.utf8)) == "z")
        #expect(storedEventID(Array(#"{"event_type": "tx", "event_id": "spaced"}"#.utf8)) == "spaced")
        // Malformed: no id, by either.
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":"open"#.utf8)) == nil)
        #expect(storedEventID(Array("{\"event_type\":\"tx\",\"event_id\":\"a\u{1}b\"}".utf8)) == nil)
        #expect(storedEventID(Array(#"{"event_type":"tx","event_id":"\u12"}"#.utf8)) == nil)
    }
}
