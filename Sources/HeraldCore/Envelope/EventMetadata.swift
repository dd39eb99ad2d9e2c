/// An envelope's `metadata`: string values by name, kept in the order they were published so the stored
/// form reads as the publisher wrote it.
///
/// Held as an array of entries, searched linearly: an event has a few names, often one (`producer`), and one
/// array costs one allocation where a dictionary costs two and a hash per lookup. Past
/// ``indexedFrom`` entries an index by name is kept beside the array, so that hostile metadata of
/// thousands of names is not quadratic to read.
public struct EventMetadata: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    private var entries: [(key: String, value: String)] = []
    /// Each name's place in `entries`, once there are more than ``indexedFrom``; `nil` before.
    private var index: [String: Int]?

    /// How many entries a linear search covers before an index is built.
    static let indexedFrom = 16

    /// Empty metadata.
    public init() {}

    /// Metadata from a literal, in the literal's order; a repeated name keeps its last value.
    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { self[name] = value }
    }

    /// The value under `name`; setting `nil` removes it.
    public subscript(name: String) -> String? {
        get { place(of: name).map { entries[$0].value } }
        set {
            if let newValue {
                updateValue(newValue, forKey: name)
            } else if let place = place(of: name) {
                entries.remove(at: place)
                rebuildIndex()
            }
        }
    }

    /// Whether there is no metadata.
    public var isEmpty: Bool { entries.isEmpty }
    /// How many names there are.
    public var count: Int { entries.count }

    /// Sets `value` under `name`, returning the value it replaced.
    @discardableResult
    public mutating func updateValue(_ value: String, forKey name: String) -> String? {
        if let place = place(of: name) {
            defer { entries[place].value = value }
            return entries[place].value
        }
        if entries.isEmpty { entries.reserveCapacity(2) }
        entries.append((name, value))
        if index != nil {
            index![name] = entries.count - 1
        } else if entries.count > Self.indexedFrom {
            rebuildIndex()
        }
        return nil
    }

    /// The entries in publish order.
    public func makeIterator() -> some IteratorProtocol<(key: String, value: String)> {
        entries.makeIterator()
    }

    public var description: String {
        "[" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
    }

    /// Equal when they hold the same names with the same values in the same order.
    public static func == (lhs: EventMetadata, rhs: EventMetadata) -> Bool {
        lhs.entries.count == rhs.entries.count
            && zip(lhs.entries, rhs.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries.count)
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }

    private func place(of name: String) -> Int? {
        if let index { return index[name] }
        return entries.firstIndex { $0.key == name }
    }

    private mutating func rebuildIndex() {
        guard entries.count > Self.indexedFrom else {
            index = nil
            return
        }
        var index: [String: Int] = [:]
        index.reserveCapacity(entries.count)
        for (place, entry) in entries.enumerated() { index[entry.key] = place }
        self.index = index
    }
}
