import HeraldCore

/// An error the broker reports to a client as an `error` frame (PROTOCOL.md §2.3, §2.4).
public struct ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of error, and whether the connection stays open.
    public var code: ErrorCode
    /// What is wrong, for a human: `field: what`.
    public var message: String
    /// The `id` of the failed request, when it had one.
    public var requestID: RequestID?
    /// The `event_id` of a failed publish sent without `id`, when the event had one.
    public var eventID: String?

    /// An error with `code` and `message`.
    public init(_ code: ErrorCode, _ message: String, requestID: RequestID? = nil, eventID: String? = nil) {
        self.code = code
        self.message = message
        self.requestID = requestID
        self.eventID = eventID
    }

    public var description: String { "\(code): \(message)" }

    static func invalidRequest(_ field: String, _ problem: String) -> ProtocolError {
        ProtocolError(.invalidRequest, "\(field): \(problem)")
    }

    static func invalidEvent(_ error: EnvelopeError) -> ProtocolError {
        ProtocolError(.invalidEvent, error.description)
    }
}
