import HTTPTypes
import HeraldCore
import HeraldProtocol
import Hummingbird
import NIOCore
import NIOPosix

/// `POST /v1/events` (publish, one event or a batch) and `GET /v1/events` (replay from the log), PROTOCOL.md
/// §7.
extension HTTPGateway {
    /// The most events one `POST /v1/events` may carry.
    static let largestBatch = 1000
    /// The most events one `GET /v1/events` page may return, and how many it returns by default.
    static let largestPage = 1000
    static let defaultPage = 100

    private struct Results: Encodable {
        struct Result: Encodable {
            let eventID: String
            let duplicate: Bool
            let offset: Int64?
            let partition: Int?

            enum CodingKeys: String, CodingKey {
                case eventID = "event_id"
                case duplicate, offset, partition
            }
        }
        let results: [Result]
    }

    func addEventRoutes(to router: Router<GatewayContext>) {
        router.post("/v1/events") { request, context in
            try await self.publish(request, context: context)
        }
        router.get("/v1/events") { request, context in
            try await self.replay(request, context: context)
        }
    }

    /// Publishes one envelope or `{"events":[…]}` (at most ``largestBatch``): every event is checked before
    /// any is published — the first bad one fails the request with its `index` and nothing is published —
    /// then they are accepted in order and the reply waits until all are durable.
    private func publish(_ request: Request, context: GatewayContext) async throws -> Response {
        let body = try await body(of: request)
        let parsed = body.withUnsafeReadableBytes { Self.parseEvents($0.assumingMemoryBound(to: UInt8.self)) }
        let events: [EnvelopeFields]
        switch parsed {
        case .failure(let error): throw error
        case .success(let list): events = list
        }
        let principal = context.principal("http")
        var admitted: [EnvelopeFields] = []
        admitted.reserveCapacity(events.count)
        for (index, event) in events.enumerated() {
            do throws(ProtocolError) {
                let fields = try broker.admit(event, from: principal)
                // Sealed without an offset here; the stored envelope adds at most the offset and partition.
                let size = EventEnvelope(sealing: fields).encodedSize + 64
                guard size <= broker.largestEnvelope else {
                    throw ProtocolError(
                        .invalidEvent,
                        "the stored envelope would be about \(size) bytes, more than max_frame − 1024 = \(broker.largestEnvelope)"
                    )
                }
                admitted.append(fields)
            } catch {
                throw APIError(error, index: index)
            }
        }
        var receipts: [PendingReceipt] = []
        for fields in admitted {
            receipts.append(broker.acceptForReceipt(fields))
            // Refused as it was accepted (a failed partition): the rest is not accepted, so that the reply's
            // index is where the batch stopped.
            if receipts.last!.failedAtOnce { break }
        }
        var results: [Results.Result] = []
        for (index, receipt) in receipts.enumerated() {
            switch await receipt.result {
            case .success(let receipt):
                results.append(
                    Results.Result(
                        eventID: receipt.eventID, duplicate: receipt.duplicate, offset: receipt.position?.offset,
                        partition: receipt.position?.partition))
            case .failure(let error):
                // The events before it were stored: the index says how far the batch got.
                throw APIError(error, index: index)
            }
        }
        return JSONResponse.encode(Results(results: results))
    }

    /// The events of a body: one envelope, or the `events` array of `{"events":[…]}`.
    static func parseEvents(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<[EnvelopeFields], APIError> {
        var scanner = JSONScanner(bytes)
        var elements: [Range<Int>]?
        var otherKeys: [String] = []
        do throws(JSONSyntaxError) {
            guard scanner.peek() == UInt8(ascii: "{") else {
                return .failure(.invalidRequest("body: must be an event envelope or {\"events\":[…]}"))
            }
            var eventsNotAnArray = false
            var eventsRepeated = false
            try scanner.readObject { key, scanner throws(JSONSyntaxError) in
                if key == "events", elements != nil || eventsNotAnArray { eventsRepeated = true }
                // An envelope has no `events` field: one that is not an array is a malformed batch.
                if key == "events", scanner.peek() != UInt8(ascii: "[") { eventsNotAnArray = true }
                guard key == "events", scanner.peek() == UInt8(ascii: "[") else {
                    otherKeys.append(key)
                    try scanner.skipValue()
                    return
                }
                var ranges: [Range<Int>] = []
                try scanner.readArray { element throws(JSONSyntaxError) in ranges.append(try element.skipValue()) }
                elements = ranges
            }
            guard scanner.isAtEnd else {
                return .failure(.invalidRequest("body: trailing bytes after the JSON object"))
            }
            if eventsRepeated { return .failure(.invalidRequest("events: appears more than once")) }
            if eventsNotAnArray { return .failure(.invalidRequest("events: must be an array of event envelopes")) }
        } catch {
            return .failure(.invalidRequest("body: not valid JSON: \(error)"))
        }
        guard let elements else {
            do throws(EnvelopeError) {
                return .success([try EnvelopeFields(parsing: bytes, form: .published)])
            } catch {
                return .failure(APIError(.badRequest, "invalid_event", error.description, index: 0))
            }
        }
        if let other = otherKeys.first {
            return .failure(.invalidRequest("\(other): unknown field; a batch is {\"events\":[…]} alone"))
        }
        guard !elements.isEmpty else { return .failure(.invalidRequest("events: must hold at least one event")) }
        guard elements.count <= largestBatch else {
            return .failure(
                APIError(
                    .contentTooLarge, "too_large",
                    "events: \(elements.count) events, more than the \(largestBatch) one request may carry"))
        }
        var events: [EnvelopeFields] = []
        for (index, range) in elements.enumerated() {
            do throws(EnvelopeError) {
                events.append(
                    try EnvelopeFields(parsing: UnsafeBufferPointer(rebasing: bytes[range]), form: .published))
            } catch {
                return .failure(APIError(.badRequest, "invalid_event", "events[\(index)]: \(error)", index: index))
            }
        }
        return .success(events)
    }

    /// The `limit` query parameter of a page: 1 to ``largestPage``, ``defaultPage`` when absent.
    static func pageLimit(_ request: Request) throws(APIError) -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return defaultPage }
        guard let number = Int(text), (1...largestPage).contains(number) else {
            throw .invalidRequest("limit: must be 1 to \(largestPage)")
        }
        return number
    }

    /// A page of stored events (`topic`, `from`, `partition`, `limit`): `{"events":[…],"next":"…"}`.
    ///
    /// A page may read up to ``Broker/replayScanBudget`` records from disk, so it is read on NIO's pool of
    /// blocking-I/O threads, never on the threads that every connection's tasks share.
    private func replay(_ request: Request, context: GatewayContext) async throws -> Response {
        let query = request.uri.queryParameters
        let topic = query["topic"].map(String.init) ?? "#"
        let pattern: TopicPattern
        do {
            pattern = try TopicPattern(topic)
        } catch {
            throw APIError(.badRequest, "invalid_topic", "topic: \(error)")
        }
        do throws(ProtocolError) {
            try broker.checkSubscribe([pattern], from: context.principal("http"))
        } catch {
            throw APIError(.forbidden, "forbidden", "topic: '\(topic)' is not covered by the token's subscribe list")
        }
        let partition: Int?
        if let text = query["partition"] {
            guard let number = Int(text), number >= 0 else {
                throw APIError.invalidRequest("partition: must be a partition number")
            }
            partition = number
        } else {
            partition = nil
        }
        let limit = try Self.pageLimit(request)
        let fromText = query["from"].map(String.init) ?? "earliest"
        guard let start = ReplayStart(fromText, partitioned: partition != nil) else {
            throw APIError.invalidRequest(
                partition == nil
                    ? "from: must be earliest, an RFC 3339 time or a cursor from 'next' (an offset needs partition)"
                    : "from: must be earliest, an RFC 3339 time or an offset")
        }
        let page: ReplayPage
        let broker = self.broker
        let read = try await NIOThreadPool.singleton.runIfActive {
            Result { () throws(ReplayError) in
                try broker.replay(pattern, from: start, partition: partition, limit: limit)
            }
        }
        do throws(ReplayError) {
            page = try read.get()
        } catch {
            switch error {
            case .cursorMismatch(let expected, let found):
                throw APIError.invalidRequest(
                    "from: the cursor names \(found) partitions; the log has \(expected)")
            case .partitionOutOfRange(let number, let count):
                throw APIError.invalidRequest("partition: \(number) is not one of the log's 0..<\(count)")
            case .storage(let error):
                throw APIError(.internalServerError, "storage_failed", "the log could not be read: \(error)")
            }
        }
        var writer = JSONWriter(capacity: page.events.reduce(64) { $0 + $1.count + 1 })
        writer.append(raw: "{\"events\":[")
        for (index, event) in page.events.enumerated() {
            if index > 0 { writer.append(raw: ",") }
            writer.append(raw: event)
        }
        writer.append(raw: "],\"next\":")
        writer.append(string: page.next)
        writer.append(raw: "}")
        return JSONResponse.raw(writer.bytes)
    }
}
