/// The error codes of PROTOCOL.md §2.4, each with what it does to the connection.
public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
    private enum Base: String, Sendable, Hashable {
        case frameTooLarge = "frame_too_large"
        case badFrame = "bad_frame"
        case handshakeRequired = "handshake_required"
        case unsupportedProtocol = "unsupported_protocol"
        case unauthorized
        case invalidRequest = "invalid_request"
        case invalidEvent = "invalid_event"
        case invalidTopic = "invalid_topic"
        case forbidden
        case unknownOp = "unknown_op"
        case unknownSubscription = "unknown_subscription"
        case rateLimited = "rate_limited"
        case tooManySubscriptions = "too_many_subscriptions"
        case shuttingDown = "shutting_down"
        case storageFailed = "storage_failed"
    }

    private enum Name: Sendable, Hashable {
        case known(Base)
        /// A code this version does not know, read from a newer broker.
        case unknown(String)
    }

    private let name: Name

    /// Herald's addition to §2.4 (docs/protocol.md): the durable log could not store the event (a write or
    /// sync failed); the event was not published and the connection stays.
    public static let storageFailed = ErrorCode(base: .storageFailed)
    /// Length 0 or above `max_frame`; the connection is closed after the error frame.
    public static let frameTooLarge = ErrorCode(base: .frameTooLarge)
    /// Not UTF-8 JSON, not an object, or no `op`.
    public static let badFrame = ErrorCode(base: .badFrame)
    /// The first frame is not `hello`; the connection is closed.
    public static let handshakeRequired = ErrorCode(base: .handshakeRequired)
    /// `protocol` is not 1; the connection is closed.
    public static let unsupportedProtocol = ErrorCode(base: .unsupportedProtocol)
    /// A token is missing or wrong where one is required; the connection is closed.
    public static let unauthorized = ErrorCode(base: .unauthorized)
    /// A field is missing, of the wrong type or out of range.
    public static let invalidRequest = ErrorCode(base: .invalidRequest)
    /// The envelope breaks PROTOCOL.md §1 or payload validation; the event is not published.
    public static let invalidEvent = ErrorCode(base: .invalidEvent)
    /// A pattern breaks PROTOCOL.md §1.
    public static let invalidTopic = ErrorCode(base: .invalidTopic)
    /// The module may not publish or subscribe to that topic.
    public static let forbidden = ErrorCode(base: .forbidden)
    /// The `op` is not one of PROTOCOL.md §2.2.
    public static let unknownOp = ErrorCode(base: .unknownOp)
    /// No such subscription on this connection.
    public static let unknownSubscription = ErrorCode(base: .unknownSubscription)
    /// The connection published faster than its limit; the event is not published.
    public static let rateLimited = ErrorCode(base: .rateLimited)
    /// Over the per-connection subscription limit.
    public static let tooManySubscriptions = ErrorCode(base: .tooManySubscriptions)
    /// A new subscribe, publish or ready after `node.shutdown` was published.
    public static let shuttingDown = ErrorCode(base: .shuttingDown)

    private init(base: Base) {
        self.name = .known(base)
    }

    /// The code named `wire` in an `error` frame; a code this version does not know is kept as it is.
    public init(wire: String) {
        self.name = Base(rawValue: wire).map { .known($0) } ?? .unknown(wire)
    }

    /// The code as it appears on the wire, such as `invalid_event`.
    public var description: String {
        switch name {
        case .known(let base): base.rawValue
        case .unknown(let wire): wire
        }
    }

    /// Whether the broker closes the connection after sending this error (PROTOCOL.md §2.4).
    public var closesConnection: Bool {
        switch name {
        case .known(.frameTooLarge), .known(.handshakeRequired), .known(.unsupportedProtocol),
            .known(.unauthorized):
            true
        default: false
        }
    }
}
