/// Checks a payload against its ``PayloadSchema`` by reading its JSON with ``JSONScanner``.
///
/// Not `JSONDecoder`: it accepts `12.0` and `1e3` for an `Int` and reports a fraction as "not valid JSON",
/// while the catalog says integers are JSON integers and the broker owes the publisher a precise message.
/// Reading the bytes directly is also cheaper on the broker's publish path.
struct PayloadValidator {
    let schema: PayloadSchema

    func validate(_ payload: RawJSON) throws(EnvelopeError) {
        let outcome = payload.bytes.withUnsafeBufferPointer { buffer -> Result<Void, EnvelopeError> in
            var scanner = JSONScanner(buffer)
            do throws(JSONSyntaxError) {
                if let failure = try check(&scanner) { return .failure(failure) }
                return .success(())
            } catch {
                // RawJSON holds valid JSON, so this is only reached for bytes that were not checked.
                return .failure(EnvelopeError(field: "payload", "not valid JSON: \(error)"))
            }
        }
        try outcome.get()
    }

    private func check(_ scanner: inout JSONScanner) throws(JSONSyntaxError) -> EnvelopeError? {
        guard scanner.peek() == UInt8(ascii: "{") else { return EnvelopeError(field: "payload", "must be an object") }
        guard schema.fields != nil else { return nil }
        var seen = Set<String>()
        var failure: EnvelopeError?
        try scanner.readObject { name, scanner throws(JSONSyntaxError) in
            guard failure == nil, let field = schema.fieldsByName[name] else {
                // Fields outside the catalog are the producer's business.
                try scanner.skipValue()
                return
            }
            guard seen.insert(name).inserted else {
                failure = .duplicateField("payload.\(name)")
                try scanner.skipValue()
                return
            }
            failure = try Self.check(field.shape, at: "payload.\(name)", nullable: !field.isRequired, &scanner)
        }
        if let failure { return failure }
        for field in schema.fields ?? [] where field.isRequired && !seen.contains(field.name) {
            return .required("payload.\(field.name)")
        }
        return nil
    }

    /// Checks the value at the scanner against `shape`, consuming it; returns what is wrong with it.
    private static func check(
        _ shape: PayloadSchema.Shape,
        at path: String,
        nullable: Bool,
        _ scanner: inout JSONScanner
    ) throws(JSONSyntaxError) -> EnvelopeError? {
        if try scanner.readNull() {
            return nullable ? nil : EnvelopeError(field: path, "must not be null")
        }
        let next = scanner.peek()
        func mismatch(_ expected: String) throws(JSONSyntaxError) -> EnvelopeError {
            try scanner.skipValue()
            return .wrongType(path, expected: expected)
        }
        switch shape {
        case .string:
            guard next == UInt8(ascii: "\"") else { return try mismatch("a string") }
            _ = try scanner.readString()
        case .hash:
            guard next == UInt8(ascii: "\"") else { return try mismatch("a string") }
            guard Hash(try scanner.readString()) != nil else {
                return EnvelopeError(field: path, "must be 64 lowercase hexadecimal characters")
            }
        case .decimal:
            guard next == UInt8(ascii: "\"") else { return try mismatch("a string") }
            guard Self.isDecimal(try scanner.readString()) else {
                return EnvelopeError(field: path, "must be a decimal number in a string, such as \"1500000\"")
            }
        case .oneOf(let values):
            let allowed = values.map { "\"\($0)\"" }.joined(separator: ", ")
            guard next == UInt8(ascii: "\"") else { return try mismatch("one of \(allowed)") }
            guard values.contains(try scanner.readString()) else {
                return EnvelopeError(field: path, "must be one of \(allowed)")
            }
        case .integer:
            do throws(JSONIntegerError) {
                _ = try scanner.readInteger()
            } catch .notANumber {
                return try mismatch("an integer")
            } catch .malformed(let error) {
                throw error
            } catch .notAnInteger {
                return .wrongType(path, expected: "an integer")
            } catch {
                return EnvelopeError(field: path, "must be an integer that fits 64 bits")
            }
        case .number:
            guard let next, next == UInt8(ascii: "-") || (next >= UInt8(ascii: "0") && next <= UInt8(ascii: "9"))
            else { return try mismatch("a number") }
            // Typed subscribers decode it as a `Double`: a literal that overflows it (`1e400`) or underflows it
            // to zero (`1e-99999`), which JSON allows, would pass here and then be dropped by them unseen.
            let literal = String(decoding: scanner.copyBytes(in: try scanner.skipValue()), as: UTF8.self)
            let mantissa = literal.prefix { $0 != "e" && $0 != "E" }
            guard let value = Double(literal), value.isFinite,
                value != 0 || !mantissa.contains(where: { $0 >= "1" && $0 <= "9" })
            else {
                return EnvelopeError(field: path, "must be a number a 64-bit float can hold")
            }
        case .boolean:
            guard next == UInt8(ascii: "t") || next == UInt8(ascii: "f") else { return try mismatch("a boolean") }
            _ = try scanner.readBool()
        case .object:
            guard next == UInt8(ascii: "{") else { return try mismatch("an object") }
            try scanner.skipValue()
        case .any:
            try scanner.skipValue()
        case .array(let element):
            guard next == UInt8(ascii: "[") else { return try mismatch("an array") }
            var failure: EnvelopeError?
            var index = 0
            try scanner.readArray { scanner throws(JSONSyntaxError) in
                defer { index += 1 }
                guard failure == nil else {
                    try scanner.skipValue()
                    return
                }
                failure = try check(element, at: "\(path)[\(index)]", nullable: false, &scanner)
            }
            return failure
        }
        return nil
    }

    /// Digits, then optionally `.` and digits: a non-negative decimal of any size.
    static func isDecimal(_ text: String) -> Bool {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        return parts.allSatisfy { part in !part.isEmpty && part.allSatisfy { (0x30...0x39).contains($0) } }
    }
}
