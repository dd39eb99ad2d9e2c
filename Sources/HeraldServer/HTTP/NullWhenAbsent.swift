/// An optional field of an API answer that is written as `null` when absent, rather than left out, so that
/// every row of a list has every field. (Synthesized `Encodable` skips `nil` optionals; it encodes this
/// wrapper as a value, and the wrapper writes `null`.)
@propertyWrapper
struct NullWhenAbsent<Value: Encodable>: Encodable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}
