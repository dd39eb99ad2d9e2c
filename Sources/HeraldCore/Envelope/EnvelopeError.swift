/// Why an event envelope breaks PROTOCOL.md §1 (or, with payload validation on, the event catalog).
///
/// On the wire this is the `invalid_event` error; `description` is its message, `field: what is wrong`.
public struct EnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The envelope field at fault (`event_type`, `payload.hash`, …), or empty for the envelope as a whole.
    public let field: String
    /// What is wrong with it, for a human.
    public let message: String

    public var description: String { field.isEmpty ? message : "\(field): \(message)" }

    package init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    package static func required(_ field: String) -> EnvelopeError {
        EnvelopeError(field: field, "required")
    }

    package static func wrongType(_ field: String, expected: String) -> EnvelopeError {
        EnvelopeError(field: field, "must be \(expected)")
    }

    package static func unknownField(_ field: String) -> EnvelopeError {
        EnvelopeError(field: field, "unknown field")
    }

    package static func duplicateField(_ field: String) -> EnvelopeError {
        EnvelopeError(field: field, "appears more than once")
    }

    package static func malformed(_ error: JSONSyntaxError) -> EnvelopeError {
        EnvelopeError(field: "", "not valid JSON: \(error)")
    }
}
