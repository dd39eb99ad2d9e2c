/// What Herald checks in a TOML text (`herald.toml`, `module.toml`) before its parser reads it.
enum TOMLText {
    /// Where a NUL escape was found: the line (from 1), and the key whose value holds it (`modules.dir`,
    /// the table's name and the statement's key), `nil` when the escape is in a key itself.
    struct NulEscape: Equatable {
        let line: Int
        let key: String?
    }

    /// The first `\u0000` or `\U00000000` escape in a basic string (`"…"`, `"""…"""`), if any. TOML allows
    /// the escape there, but TOMLKit hands strings over as C strings, cut at the NUL: `dir = "mods\u0000/x"`
    /// would be read as `"mods"`, a setting nobody wrote. No path, name or address holds a NUL, so the text
    /// is refused instead. The same characters in a comment or a literal string (`'…'`, `'''…'''`) are
    /// text, as is `\\u0000` (an escaped backslash, then `u0000`).
    static func nulEscape(in text: String) -> NulEscape? {
        var scanner = Scanner(bytes: Array(text.utf8))
        return scanner.run()
    }

    /// The line (from 1) of the first raw NUL byte, if any. TOML allows none anywhere, but TOMLKit hands the
    /// text to its parser as a C string, which ends there: what follows — a `[permissions]` table, every
    /// `[[auth.tokens]]` — would be dropped without a word.
    static func lineOfNulByte(in text: String) -> Int? {
        var line = 1
        for byte in text.utf8 {
            if byte == 0 { return line }
            if byte == UInt8(ascii: "\n") { line += 1 }
        }
        return nil
    }

    /// Reads a TOML text as far as NUL escapes need: comments, the four kinds of string, table headers and
    /// the key before each statement's `=`. It does not check the text is valid TOML; the parser does that
    /// next.
    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        /// The table the statements belong to (`[modules]`, `[[auth.tokens]]`), without its brackets.
        var table = ""
        /// Where the current statement began, and its key once its `=` is seen.
        var statementStart: Int?
        var key: String?
        /// How deep the statement is in arrays and inline tables.
        var depth = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func run() -> NulEscape? {
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "\n"):
                    line += 1
                    index += 1
                    if depth == 0 { endStatement() }
                case UInt8(ascii: "#"):
                    while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    if let found = string() { return found }
                case UInt8(ascii: "[") where statementStart == nil:
                    if let found = tableHeader() { return found }
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                    index += 1
                default:
                    if statementStart == nil { statementStart = index }
                    if key == nil, byte == UInt8(ascii: "="), depth == 0 {
                        key = String(decoding: bytes[statementStart!..<index], as: UTF8.self)
                            .trimmingWhitespace()
                    } else if key != nil, byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                        depth += 1
                    } else if key != nil, byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                        depth = max(0, depth - 1)
                    }
                    index += 1
                }
            }
            return nil
        }

        private mutating func endStatement() {
            statementStart = nil
            key = nil
        }

        /// `[name]` or `[[name]]` at a statement's start, its quoted parts read as strings (a NUL escape in
        /// one is found, with no key).
        private mutating func tableHeader() -> NulEscape? {
            let start = index
            var end = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "\n"), bytes[index] != UInt8(ascii: "#") {
                switch bytes[index] {
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    if let found = string() { return found }
                default:
                    index += 1
                }
                end = index
            }
            statementStart = nil
            var name = String(decoding: bytes[start..<end], as: UTF8.self).trimmingWhitespace()
            while name.hasPrefix("[") { name.removeFirst() }
            while name.hasSuffix("]") { name.removeLast() }
            table = name.trimmingWhitespace()
            return nil
        }

        private func starts(with quote: UInt8, count: Int, at position: Int) -> Bool {
            position + count <= bytes.count && bytes[position..<(position + count)].allSatisfy { $0 == quote }
        }

        /// A string from its opening quote past its closing one — basic (`"…"`, `"""…"""`) or literal (`'…'`,
        /// `'''…'''`, no escapes) — and the escape's place if a basic one holds a NUL escape.
        private mutating func string() -> NulEscape? {
            if statementStart == nil { statementStart = index }
            let quote = bytes[index]
            let escapes = quote == UInt8(ascii: "\"")
            let multiline = starts(with: quote, count: 3, at: index)
            index += multiline ? 3 : 1
            while index < bytes.count {
                let byte = bytes[index]
                if escapes, byte == UInt8(ascii: "\\") {
                    let next = index + 1 < bytes.count ? bytes[index + 1] : 0
                    let digits = next == UInt8(ascii: "u") ? 4 : next == UInt8(ascii: "U") ? 8 : 0
                    if digits > 0, index + 1 + digits < bytes.count,
                        bytes[(index + 2)...(index + 1 + digits)].allSatisfy({ $0 == UInt8(ascii: "0") })
                    {
                        return NulEscape(line: line, key: key.map { table.isEmpty ? $0 : "\(table).\($0)" })
                    }
                    if next == UInt8(ascii: "\n") { line += 1 }
                    index += 2
                    continue
                }
                if byte == UInt8(ascii: "\n") {
                    // A single-line string cannot span lines: the parser refuses the text.
                    if !multiline { return nil }
                    line += 1
                }
                if multiline ? starts(with: quote, count: 3, at: index) : byte == quote {
                    index += multiline ? 3 : 1
                    // Up to two more quotes end a multi-line string as part of its text.
                    while multiline, index < bytes.count, bytes[index] == quote { index += 1 }
                    return nil
                }
                index += 1
            }
            return nil
        }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text.removeLast() }
        return String(text)
    }
}
