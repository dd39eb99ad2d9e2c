/// Why a subscription could not be made.
public struct SubscriptionError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case invalidTopic
        case invalidRequest
    }

    private let code: Code
    /// What is wrong, for a human.
    public let message: String

    /// A pattern is invalid (the wire's `invalid_topic`).
    public static func invalidTopic(_ error: TopicPatternError) -> SubscriptionError {
        SubscriptionError(code: .invalidTopic, message: error.description)
    }

    /// An option is out of range (the wire's `invalid_request`).
    public static func invalidRequest(_ message: String) -> SubscriptionError {
        SubscriptionError(code: .invalidRequest, message: message)
    }

    /// Whether a pattern was at fault (`invalid_topic`) rather than an option (`invalid_request`).
    public var isInvalidTopic: Bool { code == .invalidTopic }

    public var description: String { message }
}
