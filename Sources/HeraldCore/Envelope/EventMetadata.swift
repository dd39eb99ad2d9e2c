import OrderedCollections

/// An envelope's `metadata`: string values by name, kept in the order they were published so the stored
/// form reads as the publisher wrote it.
public struct EventMetadata: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    private var entries: OrderedDictionary<String, String>

    /// Empty metadata.
    public init() {
        entries = [:]
    }

    /// Metadata from a literal, in the literal's order; a repeated name keeps its last value.
    public init(dictionaryLiteral elements: (String, String)...) {
        entries = OrderedDictionary(elements, uniquingKeysWith: { _, last in last })
    }

    /// The value under `name`; setting `nil` removes it.
    public subscript(name: String) -> String? {
        get { entries[name] }
        set { entries[name] = newValue }
    }

    /// Whether there is no metadata.
    public var isEmpty: Bool { entries.isEmpty }
    /// How many names there are.
    public var count: Int { entries.count }

    /// Sets `value` under `name`, returning the value it replaced.
    @discardableResult
    public mutating func updateValue(_ value: String, forKey name: String) -> String? {
        entries.updateValue(value, forKey: name)
    }

    /// The entries in publish order.
    public func makeIterator() -> some IteratorProtocol<(key: String, value: String)> {
        entries.makeIterator()
    }

    public var description: String {
        "[" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
    }
}
