/// A block or transaction hash as the catalog's `Hash`: 64 lowercase hexadecimal characters.
public struct Hash: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The 64 hex characters.
    public let hex: String

    /// Checks that `hex` is 64 lowercase hexadecimal characters.
    public init?(_ hex: String) {
        guard Hash.isValid(hex) else { return nil }
        self.hex = hex
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard Hash.isValid(text) else {
            throw DecodingError.dataCorruptedError(
                in: container,
                debugDescription: "must be 64 lowercase hexadecimal characters"
            )
        }
        hex = text
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }

    public var description: String { hex }

    private static func isValid(_ text: String) -> Bool {
        text.utf8.count == 64
            && text.utf8.allSatisfy {
                ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                    || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f"))
            }
    }
}
