/// A request's `id`: an integer or a string, echoed in every reply to that request (PROTOCOL.md §2.1).
public enum RequestID: Sendable, Hashable, CustomStringConvertible {
    /// An integer id, such as `"id": 7`.
    case integer(Int64)
    /// A string id, such as `"id": "req-7"`.
    case string(String)

    /// The longest string id, in UTF-8 bytes: replies echo it, and must fit in `max_frame`.
    public static let maximumBytes = 255

    public var description: String {
        switch self {
        case .integer(let value): String(value)
        case .string(let value): "\"\(value)\""
        }
    }
}
