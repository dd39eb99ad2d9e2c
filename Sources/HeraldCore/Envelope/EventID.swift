/// Event identifiers the broker assigns: UUID version 4, lowercase and hyphenated (PROTOCOL.md §1).
public enum EventID: Sendable {
    /// A fresh random UUID v4 such as `6f1c2a4e-8d0b-4e55-9a52-3b7f0d2c9e11`.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 4122 variant
        var text = [UInt8](repeating: UInt8(ascii: "-"), count: 36)
        var index = 0
        for nibble in 0..<32 {
            if index == 8 || index == 13 || index == 18 || index == 23 { index += 1 }
            let word = nibble < 16 ? high : low
            let shift = UInt64(60 - (nibble % 16) * 4)
            text[index] = hexDigits[Int((word >> shift) & 0xF)]
            index += 1
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// Lowercase hexadecimal digits, for event ids and JSON escapes.
let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
