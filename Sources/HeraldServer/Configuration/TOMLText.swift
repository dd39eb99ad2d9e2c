/// What Herald checks in a TOML text (`herald.toml`, `module.toml`) before its parser reads it.
enum TOMLText {
    /// The line (from 1) of the first `\u0000` or `\U00000000` escape, if any. TOML allows the escape in a
    /// basic string, but TOMLKit hands strings over as C strings, cut at the NUL: `dir = "mods\u0000/x"`
    /// would be read as `"mods"`, a setting nobody wrote. No path, name or address holds a NUL, so the text
    /// is refused instead. (A `\\` before the `u` is an escaped backslash, not an escape.)
    static func nulEscapeLine(in text: String) -> Int? {
        let bytes = Array(text.utf8)
        var line = 1
        var index = 0
        var backslashes = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") { line += 1 }
            if backslashes % 2 == 1 {
                let digits = byte == UInt8(ascii: "u") ? 4 : byte == UInt8(ascii: "U") ? 8 : 0
                if digits > 0, index + digits < bytes.count,
                    bytes[(index + 1)...(index + digits)].allSatisfy({ $0 == UInt8(ascii: "0") })
                {
                    return line
                }
            }
            backslashes = byte == UInt8(ascii: "\\") ? backslashes + 1 : 0
            index += 1
        }
        return nil
    }
}
