/// Why a ``HeraldClient`` call failed on the client's side. Errors the broker reports arrive as
/// `ProtocolError`, with the code of PROTOCOL.md §2.4.
public enum HeraldClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The client was closed.
    case closed
    /// The connection was lost before the broker answered; whether the request took effect is unknown.
    /// A publish with a fixed `event_id` may be sent again safely once the broker deduplicates (§4.3).
    case connectionLost
    /// The broker sent something PROTOCOL.md does not allow.
    case protocolViolation(String)
    /// The broker could not be reached.
    case cannotConnect(String)

    public var description: String {
        switch self {
        case .closed: "the client is closed"
        case .connectionLost: "the connection to the broker was lost before it answered"
        case .protocolViolation(let what): "the broker broke the protocol: \(what)"
        case .cannotConnect(let why): "cannot connect to the broker: \(why)"
        }
    }
}
