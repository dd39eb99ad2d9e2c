import HeraldCore

/// An error the broker reports to a client as an `error` frame (PROTOCOL.md §2.3, §2.4).
public struct ProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of error, and whether the connection stays open.
    public var code: ErrorCode
    /// What is wrong, for a human: `field: what`.
    public var message: String
    /// The `id` of the failed request, when it had one.
    public var requestID: RequestID?
    /// The `event_id` of a failed publish sent without `id`, when the event had one (of at most 255 bytes:
    /// a longer one is invalid, and not echoed).
    public var eventID: String? {
        didSet { if let eventID, eventID.utf8.count > 255 { self.eventID = nil } }
    }

    /// An error with `code` and `message`. A message that quotes what the client sent is cut to
    /// ``maximumMessageBytes``, and an `event_id` over 255 bytes (an invalid one) is not echoed, so that
    /// every error frame fits in the smallest `max_frame` (§2.1: the limit holds in both directions).
    public init(_ code: ErrorCode, _ message: String, requestID: RequestID? = nil, eventID: String? = nil) {
        self.code = code
        self.message = Self.clamped(message)
        self.requestID = requestID
        self.eventID = eventID.flatMap { $0.utf8.count <= 255 ? $0 : nil }
    }

    /// The longest message an error frame carries, in UTF-8 bytes.
    public static let maximumMessageBytes = 1024

    /// `message` cut, if needed, so that it takes at most ``maximumMessageBytes`` once escaped in JSON (a
    /// control character takes six bytes there, `"` and `\` two).
    public static func clamped(_ message: String) -> String {
        var size = 0
        var end = message.unicodeScalars.startIndex
        for scalar in message.unicodeScalars {
            let encoded =
                scalar.value < 0x20 ? 6 : scalar == "\"" || scalar == "\\" ? 2 : String(scalar).utf8.count
            guard size + encoded <= maximumMessageBytes - 3 else {
                return String(message.unicodeScalars[..<end]) + "…"
            }
            size += encoded
            end = message.unicodeScalars.index(after: end)
        }
        return message
    }

    public var description: String { "\(code): \(message)" }

    static func invalidRequest(_ field: String, _ problem: String) -> ProtocolError {
        ProtocolError(.invalidRequest, "\(field): \(problem)")
    }

    static func invalidEvent(_ error: EnvelopeError) -> ProtocolError {
        ProtocolError(.invalidEvent, error.description)
    }
}
