/// A forward-only reader over the bytes of one JSON text.
///
/// Hand-written because Herald must keep an event's `payload` byte-for-byte as published and must read the
/// few envelope and frame fields it needs without building a general JSON tree: Foundation's decoders can
/// do neither. It validates everything it passes over (RFC 8259 grammar, UTF-8, nesting depth), so a
/// byte range it returns from ``skipValue()`` is known to be one well-formed JSON value.
package struct JSONScanner: ~Copyable {
    /// The deepest nesting of arrays and objects accepted inside one value; deeper input is refused
    /// rather than risking unbounded work.
    package static let maximumDepth = 512

    private let bytes: UnsafeBufferPointer<UInt8>
    package private(set) var position: Int = 0

    package init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    // MARK: Structure

    package var isAtEnd: Bool {
        mutating get {
            skipWhitespace()
            return position == bytes.count
        }
    }

    /// The first byte of the next value, after white space, without consuming it.
    package mutating func peek() -> UInt8? {
        skipWhitespace()
        return position < bytes.count ? bytes[position] : nil
    }

    /// Reads the members of an object, calling `body` with each key; `body` must consume the value.
    package mutating func readObject(_ body: (String, inout JSONScanner) throws(JSONSyntaxError) -> Void)
        throws(JSONSyntaxError)
    {
        _ = try readMembers(key: { scanner throws(JSONSyntaxError) in try scanner.readString() }) {
            key, scanner throws(JSONSyntaxError) in
            try body(key, &scanner)
            return true
        }
    }

    /// Moves to the value of the first member of the object at the current position whose key is `name`,
    /// passing over the members before it without making a `String` of their keys; `false`, at the object's
    /// end, when it has none. What follows the value found is neither read nor checked: for bytes the
    /// broker wrote itself, when the field wanted comes early.
    package mutating func findMember(_ name: StaticString) throws(JSONSyntaxError) -> Bool {
        // `withUTF8Buffer`, not `utf8Start`: a one-character literal is kept as a scalar, without a pointer.
        try name.withUTF8Buffer { wanted in
            Result { () throws(JSONSyntaxError) -> Bool in
                let wanted = UnsafeRawBufferPointer(wanted)
                return try readMembers(key: { scanner throws(JSONSyntaxError) in
                    try scanner.withStringBytes { Self.equal($0, wanted) }
                }) { matches, scanner throws(JSONSyntaxError) in
                    if matches { return false }
                    _ = try scanner.skipValue()
                    return true
                }
            }
        }.get()
    }

    /// Reads an object's members: `key` reads each key (the scanner at its opening quote), `body` gets what
    /// it made with the scanner at the value, consumes the value and says whether to go on. `true` when
    /// `body` stopped (the scanner then where `body` left it), `false` at the object's end.
    private mutating func readMembers<Key>(
        key readKey: (inout JSONScanner) throws(JSONSyntaxError) -> Key,
        until body: (Key, inout JSONScanner) throws(JSONSyntaxError) -> Bool
    ) throws(JSONSyntaxError) -> Bool {
        try expect(UInt8(ascii: "{"), "an object")
        if peek() == UInt8(ascii: "}") {
            position += 1
            return false
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try readKey(&self)
            try expect(UInt8(ascii: ":"), "':'")
            guard try body(key, &self) else { return true }
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                return false
            default: throw error("expected ',' or '}'")
            }
        }
    }

    private static func equal(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        for index in 0..<left.count where left[index] != right[index] { return false }
        return true
    }

    /// Reads the elements of an array, calling `body` for each; `body` must consume the element.
    package mutating func readArray(_ body: (inout JSONScanner) throws(JSONSyntaxError) -> Void)
        throws(JSONSyntaxError)
    {
        try expect(UInt8(ascii: "["), "an array")
        if peek() == UInt8(ascii: "]") {
            position += 1
            return
        }
        while true {
            try body(&self)
            switch peek() {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                return
            default: throw error("expected ',' or ']'")
            }
        }
    }

    // MARK: Scalars

    /// Reads a string value and returns it decoded; rejects invalid UTF-8 and raw control characters.
    package mutating func readString() throws(JSONSyntaxError) -> String {
        let (start, raw, hasEscapes, isASCII) = try scanString()
        if !hasEscapes {
            if isASCII { return String(decoding: raw, as: UTF8.self) }
            guard let string = String(validating: raw, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
            return string
        }
        return try unescape(raw, at: start)
    }

    /// Reads a string value, validated as ``readString()`` does, and calls `body` with its UTF-8 bytes: the
    /// bytes between the quotes, unless it holds escapes (then the decoded string's). No `String` is made
    /// for a string without escapes.
    package mutating func withStringBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result)
        throws(JSONSyntaxError) -> Result
    {
        let (start, raw, hasEscapes, isASCII) = try scanString()
        guard hasEscapes else {
            if !isASCII, String(validating: raw, as: UTF8.self) == nil { throw error("invalid UTF-8 in string") }
            return body(UnsafeRawBufferPointer(raw))
        }
        var string = try unescape(raw, at: start)
        return string.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    /// Passes over a string value, validating it as ``readString()`` does, without making a `String` unless
    /// it holds escapes or non-ASCII bytes (the common case on the hot path is plain ASCII).
    private mutating func skipString() throws(JSONSyntaxError) {
        let (start, raw, hasEscapes, isASCII) = try scanString()
        if hasEscapes {
            _ = try unescape(raw, at: start)
        } else if !isASCII, String(validating: raw, as: UTF8.self) == nil {
            throw error("invalid UTF-8 in string")
        }
    }

    /// Finds the end of the string value at the current position and moves past it: the offset of its
    /// first byte, its bytes between the quotes, and what they hold.
    private mutating func scanString() throws(JSONSyntaxError) -> (
        start: Int, raw: UnsafeBufferPointer<UInt8>, hasEscapes: Bool, isASCII: Bool
    ) {
        try expect(UInt8(ascii: "\""), "a string")
        let start = position
        var hasEscapes = false
        var isASCII = true
        while true {
            // Eight bytes at a time while none of them ends the string, starts an escape, is a control
            // character or is not ASCII; byte by byte from the first word that has one of those.
            while position &+ 8 <= bytes.count,
                Self.isPlainASCII(UnsafeRawPointer(bytes.baseAddress! + position).loadUnaligned(as: UInt64.self))
            {
                position &+= 8
            }
            guard position < bytes.count else { throw error("unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { break }
            if byte < 0x20 { throw error("control character in string") }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                position += 2
                continue
            }
            if byte >= 0x80 { isASCII = false }
            position += 1
        }
        let end = position
        position += 1
        return (start, UnsafeBufferPointer(rebasing: bytes[start..<end]), hasEscapes, isASCII)
    }

    /// Where the string starting at `start` in `bytes` (past its opening quote) ends, its closing quote,
    /// when every byte up to it is ASCII from 0x20 on, other than `\\`: such a string's raw bytes are its
    /// value. `nil` when it holds an escape, a control character or a byte above 0x7F, or is not closed.
    package static func endOfPlainString(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var position = start
        while position &+ 8 <= bytes.count,
            isPlainASCII(bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        {
            position &+= 8
        }
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") { return position }
            if byte < 0x20 || byte >= 0x80 || byte == UInt8(ascii: "\\") { return nil }
            position &+= 1
        }
        return nil
    }

    /// Whether none of the eight bytes of `word` is `"`, `\\`, below 0x20 or above 0x7F. The tests may
    /// report such a byte that is not there (a borrow from a lower byte), never miss one that is.
    @inline(__always)
    private static func isPlainASCII(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        func hasZeroByte(_ value: UInt64) -> UInt64 { (value &- ones) & ~value & highBits }
        let quote = hasZeroByte(word ^ (ones &* 0x22))
        let backslash = hasZeroByte(word ^ (ones &* 0x5C))
        let control = (word &- ones &* 0x20) & ~word & highBits
        return (quote | backslash | control | (word & highBits)) == 0
    }

    /// Reads a number that must be an integer (no fraction or exponent) in `Int64`'s range.
    package mutating func readInteger() throws(JSONIntegerError) -> Int64 {
        guard let first = peek(), first == UInt8(ascii: "-") || isDigit(first) else { throw .notANumber }
        let start = position
        do throws(JSONSyntaxError) {
            try skipNumber()
        } catch {
            throw .malformed(error)
        }
        var literal = UnsafeBufferPointer(rebasing: bytes[start..<position])
        if literal.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            throw .notAnInteger
        }
        let negative = literal[0] == UInt8(ascii: "-")
        if negative { literal = UnsafeBufferPointer(rebasing: literal[1...]) }
        var magnitude: UInt64 = 0
        for digit in literal {
            let (shifted, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = shifted.addingReportingOverflow(UInt64(digit &- UInt8(ascii: "0")))
            if overflow1 || overflow2 { throw .outOfRange }
            magnitude = sum
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw .outOfRange }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw .outOfRange }
        return Int64(magnitude)
    }

    /// Reads a number that must be an integer in `0...Int64.max`.
    package mutating func readNonNegativeInteger() throws(JSONIntegerError) -> Int64 {
        let value = try readInteger()
        guard value >= 0 else { throw .outOfRange }
        return value
    }

    /// Reads `true` or `false`.
    package mutating func readBool() throws(JSONSyntaxError) -> Bool {
        switch peek() {
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return true
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return false
        default: throw error("expected true or false")
        }
    }

    /// Passes over one value of any kind, validating it, and returns the byte range it occupies.
    @discardableResult
    package mutating func skipValue() throws(JSONSyntaxError) -> Range<Int> {
        guard peek() != nil else { throw error("expected a value") }
        let start = position
        // Containers are tracked on an explicit stack, not by recursion, so hostile nesting cannot
        // exhaust the thread's stack; `true` marks an object.
        var containers = ContainerStack()
        while true {
            // A value starts here.
            guard let byte = peek() else { throw error("expected a value") }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard containers.count < Self.maximumDepth else {
                    throw error("nesting deeper than \(Self.maximumDepth)")
                }
                let isObject = byte == UInt8(ascii: "{")
                position += 1
                containers.append(isObject)
                let closing = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if peek() == closing {
                    position += 1
                    containers.removeLast()
                } else if isObject {
                    try skipKey()
                    continue
                } else {
                    continue
                }
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "t"): try expectLiteral("true")
            case UInt8(ascii: "f"): try expectLiteral("false")
            case UInt8(ascii: "n"): try expectLiteral("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try skipNumber()
            default: throw error("unexpected character")
            }
            // After a value: close containers or move to the next element.
            while let isObject = containers.last {
                let closing = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
                switch peek() {
                case UInt8(ascii: ","):
                    position += 1
                    if isObject { try skipKey() }
                case closing:
                    position += 1
                    containers.removeLast()
                    continue
                default:
                    throw error(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
                }
                break
            }
            if containers.isEmpty { return start..<position }
        }
    }

    /// Reads `null`, returning whether it was there (without consuming anything otherwise).
    package mutating func readNull() throws(JSONSyntaxError) -> Bool {
        guard peek() == UInt8(ascii: "n") else { return false }
        try expectLiteral("null")
        return true
    }

    /// A scanner over just the bytes in `range`, such as a value's range from ``skipValue()``.
    package func scanner(over range: Range<Int>) -> JSONScanner {
        JSONScanner(UnsafeBufferPointer(rebasing: bytes[range]))
    }

    /// A copy of the bytes in `range`, such as a value's range from ``skipValue()``.
    package func copyBytes(in range: Range<Int>) -> [UInt8] {
        Array(UnsafeBufferPointer(rebasing: bytes[range]))
    }

    // MARK: Private

    private mutating func skipKey() throws(JSONSyntaxError) {
        guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
        try skipString()
        try expect(UInt8(ascii: ":"), "':'")
    }

    private mutating func skipNumber() throws(JSONSyntaxError) {
        if position < bytes.count && bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
        } else {
            skipDigits()
        }
        if position < bytes.count && bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number") }
            skipDigits()
        }
        if position < bytes.count && (bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E")) {
            position += 1
            if position < bytes.count && (bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-"))
            {
                position += 1
            }
            guard position < bytes.count, isDigit(bytes[position]) else { throw error("invalid number") }
            skipDigits()
        }
    }

    private mutating func skipDigits() {
        while position < bytes.count && isDigit(bytes[position]) { position += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(JSONSyntaxError) {
        guard peek() == byte else { throw error("expected \(what)") }
        position += 1
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("invalid literal") }
        let text = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for index in 0..<count where bytes[position + index] != text[index] {
            throw error("invalid literal")
        }
        position += count
    }

    private func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(message: message, offset: position)
    }

    private func unescape(_ raw: UnsafeBufferPointer<UInt8>, at offset: Int) throws(JSONSyntaxError) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(raw.count)
        var index = 0
        func fail(_ message: String) -> JSONSyntaxError {
            JSONSyntaxError(message: message, offset: offset + index)
        }
        func hex4(_ at: Int) throws(JSONSyntaxError) -> UInt32 {
            guard at + 4 <= raw.count else { throw fail("invalid \\u escape") }
            var value: UInt32 = 0
            for byte in raw[at..<at + 4] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("invalid \\u escape")
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while index < raw.count {
            let byte = raw[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            guard index + 1 < raw.count else { throw fail("invalid escape") }
            let escaped = raw[index + 1]
            index += 2
            switch escaped {
            case UInt8(ascii: "\""): output.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): output.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): output.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(index)
                index += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    guard index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u")
                    else { throw fail("unpaired surrogate in \\u escape") }
                    let low = try hex4(index + 2)
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("unpaired surrogate in \\u escape")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                output.append(contentsOf: UTF8.encode(unicode)!)
            default: throw fail("invalid escape")
            }
        }
        guard let string = String(validating: output, as: UTF8.self) else {
            throw JSONSyntaxError(message: "invalid UTF-8 in string", offset: offset)
        }
        return string
    }
}

/// Why a JSON text could not be read, and where.
package struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package var offset: Int

    package init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    package var description: String { "\(message) at byte \(offset)" }
}

/// Why a JSON value is not an integer in `0...Int64.max`.
package enum JSONIntegerError: Error, Sendable, Equatable {
    /// The next value is not a number; nothing was consumed.
    case notANumber
    /// The number is not valid JSON; the text is broken.
    case malformed(JSONSyntaxError)
    case notAnInteger
    case outOfRange
}

/// The open containers of ``JSONScanner/skipValue()``, one bit each (`true`: an object), held inline: no
/// allocation per skipped value, up to ``JSONScanner/maximumDepth`` levels.
private struct ContainerStack {
    private var words = InlineArray<8, UInt64>(repeating: 0)
    private(set) var count = 0

    static var capacity: Int { 8 * 64 }

    var isEmpty: Bool { count == 0 }

    var last: Bool? {
        guard count > 0 else { return nil }
        let index = count - 1
        return words[index >> 6] & (1 << UInt64(index & 63)) != 0
    }

    mutating func append(_ isObject: Bool) {
        precondition(count < Self.capacity, "deeper than the stack holds")
        let bit: UInt64 = 1 << UInt64(count & 63)
        if isObject { words[count >> 6] |= bit } else { words[count >> 6] &= ~bit }
        count += 1
    }

    mutating func removeLast() {
        precondition(count > 0)
        count -= 1
    }
}
