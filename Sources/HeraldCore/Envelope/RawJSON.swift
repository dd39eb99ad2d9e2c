#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One well-formed JSON value kept as its exact bytes: an event's `payload`, which the broker carries
/// byte-for-byte as published and never interprets unless payload validation is on.
public struct RawJSON: Sendable, Hashable, CustomStringConvertible {
    /// The UTF-8 JSON text of the value.
    public let bytes: [UInt8]

    /// Wraps `bytes` after checking that they hold exactly one JSON value (surrounding white space allowed).
    public init(validating bytes: [UInt8]) throws(EnvelopeError) {
        let complete = try bytes.withUnsafeBufferPointer { buffer throws(EnvelopeError) in
            var scanner = JSONScanner(buffer)
            do throws(JSONSyntaxError) {
                try scanner.skipValue()
            } catch {
                throw EnvelopeError(field: "payload", "not valid JSON: \(error)")
            }
            return scanner.isAtEnd
        }
        guard complete else { throw EnvelopeError(field: "payload", "trailing bytes after the JSON value") }
        self.bytes = bytes
    }

    /// Wraps the UTF-8 of `text` after checking that it is one JSON value.
    public init(validating text: String) throws(EnvelopeError) {
        try self.init(validating: Array(text.utf8))
    }

    /// Encodes `value` with `JSONEncoder`, object keys sorted, so that one value always gives the same bytes.
    public init(encoding value: some Encodable) throws(EnvelopeError) {
        do {
            bytes = Array(try RawJSON.encoder.encode(value))
        } catch {
            throw EnvelopeError(field: "payload", "could not be encoded: \(error)")
        }
    }

    /// Bytes already known to be one valid JSON value (a range the scanner validated).
    package init(unchecked bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Decodes the value with `JSONDecoder`.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try RawJSON.decoder().decode(type, from: Data(bytes))
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    // JSONDecoder is a class with mutable options; a fresh one per decode keeps this Sendable without a lock.
    private static func decoder() -> JSONDecoder { JSONDecoder() }
}
