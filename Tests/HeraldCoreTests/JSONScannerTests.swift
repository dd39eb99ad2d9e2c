import Testing

@testable import HeraldCore

@Suite struct JSONScannerTests {
    private func skip(_ text: String) throws(JSONSyntaxError) -> String {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
            var scanner = JSONScanner(buffer)
            let range = try scanner.skipValue()
            guard scanner.isAtEnd else { throw JSONSyntaxError(message: "trailing", offset: scanner.position) }
            return String(decoding: bytes[range], as: UTF8.self)
        }
    }

    private func string(_ text: String) throws(JSONSyntaxError) -> String {
        try Array(text.utf8).withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
            var scanner = JSONScanner(buffer)
            return try scanner.readString()
        }
    }

    @Test(arguments: [
        "0", "-0", "12.5e-3", "1E+2", "true", "false", "null", "\"\"", "\"caf\u{e9}\"", "[]", "{}",
        "[1,[2,[3,{\"a\":[]}]]]", "{\"a\":{\"b\":null},\"c\":[true,false]}", " \n\t{ \"a\" : 1 } ",
    ])
    func acceptsWellFormedValues(_ text: String) throws {
        #expect(try skip(text) == text.trimmingWhitespace())
    }

    @Test(arguments: [
        "", "01", "1.", ".5", "-", "1e", "+1", "tru", "nul", "\"abc", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
        "[1 2]", "\"\u{01}\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "{\"a\":1]", "[1}", "1 2",
    ])
    func rejectsMalformedValues(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try skip(text) }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xC3, 0x28, 0x22]  // an invalid two-byte sequence inside a string
        #expect(throws: JSONSyntaxError.self) {
            try bytes.withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
                var scanner = JSONScanner(buffer)
                _ = try scanner.readString()
            }
        }
    }

    /// Strings are scanned eight bytes at a time until a word holds a quote, a backslash, a control character
    /// or a non-ASCII byte: each of those must be found wherever it falls in or across a word.
    @Test func findsEverySpecialByteWhereverItFallsInAWord() throws {
        for length in 0..<20 {
            let plain = String(repeating: "a", count: length)
            #expect(try string("\"\(plain)\"tail") == plain)
            for index in 0..<length {
                var prefix = Array(plain.utf8)
                prefix[index] = UInt8(ascii: "\"")
                #expect(
                    try string("\"" + String(decoding: prefix, as: UTF8.self) + "\"") == String(plain.prefix(index)))
                var control = Array(plain.utf8)
                control[index] = 0x1F
                #expect(throws: JSONSyntaxError.self) {
                    try string("\"" + String(decoding: control, as: UTF8.self) + "\"")
                }
                let escaped = String(plain.prefix(index)) + #"\n"# + String(plain.dropFirst(index))
                #expect(try string("\"\(escaped)\"") == String(plain.prefix(index)) + "\n" + plain.dropFirst(index))
                let accented = String(plain.prefix(index)) + "\u{e9}" + String(plain.dropFirst(index))
                #expect(try string("\"\(accented)\"") == accented)
            }
            #expect(throws: JSONSyntaxError.self) { try string("\"\(plain)") }
        }
    }

    /// What `findMember("id")` finds in `text`: the value after it, read as a string, or `nil` when absent.
    private func member(_ text: String) throws(JSONSyntaxError) -> String? {
        try Array(text.utf8).withUnsafeBufferPointer { buffer throws(JSONSyntaxError) in
            var scanner = JSONScanner(buffer)
            guard try scanner.findMember("id") else { return nil }
            return try scanner.withStringBytes { String(decoding: $0, as: UTF8.self) }
        }
    }

    @Test func findsAMemberByItsKeyBytesOrItsDecodedKey() throws {
        #expect(try member(#"{"idx":"no","i":{"id":"inner"},"id":"yes","after":"#) == "yes")
        #expect(try member(#"{"\u0069d":"escaped key"}"#) == "escaped key")
        #expect(try member(#"{"id":"tab\tand caf\u00e9"}"#) == "tab\tand caf\u{E9}")
        #expect(try member(#"{"other":1}"#) == nil)
        #expect(try member("{}") == nil)
        #expect(throws: JSONSyntaxError.self) { try member(#"{"x":[1,}"#) }
        #expect(throws: JSONSyntaxError.self) { try member("[\"id\"]") }
    }

    @Test func decodesEscapes() throws {
        #expect(try string(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00""#) == "a\"b\\c/d\n\t\u{e9}\u{1F600}")
    }

    @Test func limitsNestingDepth() throws {
        let deep =
            String(repeating: "[", count: JSONScanner.maximumDepth)
            + String(repeating: "]", count: JSONScanner.maximumDepth)
        #expect(try skip(deep) == deep)
        let tooDeep = "[" + deep + "]"
        #expect(throws: JSONSyntaxError.self) { try skip(tooDeep) }
        // Far deeper than any stack would survive with recursion: still a clean error.
        let hostile = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONSyntaxError.self) { try skip(hostile) }
    }

    @Test func objectsAndArraysNestedDeepCloseInTheirOwnOrder() throws {
        // Objects and arrays alternate, so each level's kind is told apart past every 64 levels.
        let depth = JSONScanner.maximumDepth
        var opening = ""
        var closing: [String] = []
        for level in 0..<depth {
            if level % 3 == 0 {
                opening += #"{"k":"#
                closing.append("}")
            } else {
                opening += "["
                closing.append("]")
            }
        }
        let whole = opening + "1" + closing.reversed().joined()
        #expect(try skip(whole) == whole)
        // One closer of the wrong kind, 130 levels down, is an error.
        var wrong = Array(closing.reversed())
        let index = depth - 130
        wrong[index] = wrong[index] == "}" ? "]" : "}"
        #expect(throws: JSONSyntaxError.self) { try skip(opening + "1" + wrong.joined()) }
    }

    /// Reads one integer from `text` with `read`, as a `Result` so tables can compare errors.
    private func integer(
        _ text: String,
        _ read: (inout JSONScanner) throws(JSONIntegerError) -> Int64
    ) -> Result<Int64, JSONIntegerError> {
        Array(text.utf8).withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer)
            do throws(JSONIntegerError) {
                return .success(try read(&scanner))
            } catch {
                return .failure(error)
            }
        }
    }

    @Test func readsNonNegativeIntegers() throws {
        func integer(_ text: String) -> Result<Int64, JSONIntegerError> {
            self.integer(text) { scanner throws(JSONIntegerError) in try scanner.readNonNegativeInteger() }
        }
        #expect(integer("0") == .success(0))
        #expect(integer("138") == .success(138))
        #expect(integer("9223372036854775807") == .success(Int64.max))
        #expect(integer("9223372036854775808") == .failure(.outOfRange))
        #expect(integer("-1") == .failure(.outOfRange))
        #expect(integer("-0") == .success(0))
        #expect(integer("1.0") == .failure(.notAnInteger))
        #expect(integer("1e3") == .failure(.notAnInteger))
        #expect(integer("\"1\"") == .failure(.notANumber))
    }

    @Test func readsSignedIntegers() {
        func integer(_ text: String) -> Result<Int64, JSONIntegerError> {
            self.integer(text) { scanner throws(JSONIntegerError) in try scanner.readInteger() }
        }
        #expect(integer("-42") == .success(-42))
        #expect(integer("-9223372036854775808") == .success(Int64.min))
        #expect(integer("-9223372036854775809") == .failure(.outOfRange))
        #expect(integer("12.0") == .failure(.notAnInteger))
        #expect(integer("true") == .failure(.notANumber))
    }

    @Test func writerEscapesWhatJSONRequires() throws {
        var writer = JSONWriter()
        writer.append(string: "q\"b\\n\nt\tc\u{01}\u{e9}")
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == #""q\"b\\n\nt\tc\u0001é""#)
        #expect(try string(text) == "q\"b\\n\nt\tc\u{01}\u{e9}")
    }

    @Test(arguments: [Int64(0), 7, 10, 99, 100, 123_456_789, Int64.max, -42, Int64.min])
    func writerWritesIntegers(_ value: Int64) {
        var writer = JSONWriter()
        writer.append(integer: value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == String(value))
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
