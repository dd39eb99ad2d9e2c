/// An event of Herald's catalog (`docs/events.md`): a typed payload that knows its `event_type`.
///
/// Publish one with ``EventBus/publish(_:chainID:eventID:key:metadata:)`` and receive them typed with
/// ``EventBus/subscribe(_:chainID:subscriber:buffer:overflow:)``.
public protocol CatalogEvent: Codable, Sendable, Hashable {
    /// The `event_type` this payload travels under, such as `block.new`.
    static var eventType: String { get }
}

/// A closed set of string values in a catalog payload; decoding any other string fails with a message
/// naming the allowed values.
public protocol CatalogValue: RawRepresentable<String>, CaseIterable, Codable, Sendable, Hashable {}

extension CatalogValue {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of \(allowed)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
