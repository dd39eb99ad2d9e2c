/// Appends JSON text to a byte buffer: the one place Herald writes envelopes and frames by hand, so that
/// an event is encoded once and its stored bytes can be spliced into every frame that carries it.
package struct JSONWriter {
    package var bytes: [UInt8]

    package init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // The appends below are `@inlinable`: they run for every frame and every delivery, from other modules,
    // and a generic one called across modules unspecialised copies its bytes one by one through protocol
    // witnesses (FrameWriter.event was 15 % of a fan-out profile before).

    @inlinable
    package mutating func append(raw: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: raw.utf8Start, count: raw.utf8CodeUnitCount))
    }

    /// Bytes already encoded (a stored envelope), copied as one block.
    @inlinable
    package mutating func append(raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    @inlinable
    package mutating func append(raw: some Sequence<UInt8>) {
        bytes.append(contentsOf: raw)
    }

    // Integers have concrete overloads, not one generic: a generic `some BinaryInteger` was left
    // unspecialised across modules, and each digit went through protocol witnesses (`isSigned`,
    // `bitWidth`, `_lowWord`: 5 % of the consumer-group committer's profile).

    @inlinable
    package mutating func append(integer: Int) {
        append(integer: Int64(integer))
    }

    @inlinable
    package mutating func append(integer: Int64) {
        if integer < 0 { bytes.append(UInt8(ascii: "-")) }
        append(integer: integer.magnitude)
    }

    @inlinable
    package mutating func append(integer: UInt64) {
        // Decimal digits written in place, without going through String's allocation.
        var magnitude = integer
        var digitCount = 1
        var probe = magnitude
        while probe >= 10 {
            probe /= 10
            digitCount += 1
        }
        let end = bytes.count + digitCount
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount))
        var index = end - 1
        while magnitude > 0 {
            bytes[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            index -= 1
        }
    }

    /// Appends `string` as a quoted JSON string, escaping what RFC 8259 requires.
    package mutating func append(string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for (index, byte) in utf8.enumerated() where Self.isEscaped(byte) {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                appendEscaped(byte)
                runStart = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// The bytes ``append(string:)`` writes for `string`, quotes included, without writing them.
    package static func encodedLength(of string: String) -> Int {
        var string = string
        return string.withUTF8 { utf8 in
            var length = 2 + utf8.count
            for byte in utf8 where isEscaped(byte) { length += escapedLength(byte) - 1 }
            return length
        }
    }

    /// The bytes ``append(integer:)`` writes for `integer`.
    package static func encodedLength(of integer: Int64) -> Int {
        var length = integer < 0 ? 2 : 1
        var probe = integer.magnitude
        while probe >= 10 {
            probe /= 10
            length += 1
        }
        return length
    }

    /// Whether ``append(string:)`` escapes `byte` (RFC 8259: `"`, `\` and the control characters).
    private static func isEscaped(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == 0x5C
    }

    /// The bytes ``appendEscaped(_:)`` writes for `byte`: two for the short escapes, six for `\u00XX`.
    private static func escapedLength(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "\""), 0x5C, 0x0A, 0x0D, 0x09: 2
        default: 6
        }
    }

    private mutating func appendEscaped(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): append(raw: "\\\"")
        case 0x5C: append(raw: "\\\\")
        case 0x0A: append(raw: "\\n")
        case 0x0D: append(raw: "\\r")
        case 0x09: append(raw: "\\t")
        default:
            append(raw: "\\u00")
            bytes.append(hexDigits[Int(byte >> 4)])
            bytes.append(hexDigits[Int(byte & 0x0F)])
        }
    }
}
