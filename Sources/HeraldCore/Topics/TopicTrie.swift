/// Subscription patterns arranged by word, so that finding the values whose patterns match a topic costs
/// what matches, not how many patterns exist: a lookup follows only the edges named by the topic's words
/// plus the `*` and `#` edges present on that path.
///
/// Not thread-safe by itself; the bus keeps it inside its lock.
package struct TopicTrie<Value: Hashable>: ~Copyable {
    private final class Node {
        var literals: [Substring: Node] = [:]
        var one: Node?
        var any: Node?
        var values: Set<Value> = []

        var isEmpty: Bool { literals.isEmpty && one == nil && any == nil && values.isEmpty }
    }

    private let root = Node()
    package private(set) var count = 0

    package init() {}

    /// Adds `value` under `pattern`; adding the same pair twice keeps one.
    package mutating func insert(_ pattern: TopicPattern, _ value: Value) {
        var node = root
        for word in pattern.words {
            switch word {
            case .literal(let text):
                let key = Substring(text)
                if let next = node.literals[key] {
                    node = next
                } else {
                    let next = Node()
                    node.literals[key] = next
                    node = next
                }
            case .one:
                if node.one == nil { node.one = Node() }
                node = node.one!
            case .any:
                if node.any == nil { node.any = Node() }
                node = node.any!
            }
        }
        if node.values.insert(value).inserted { count += 1 }
    }

    /// Removes `value` from under `pattern`, pruning nodes left empty.
    package mutating func remove(_ pattern: TopicPattern, _ value: Value) {
        if Self.remove(pattern.words[...], value, from: root) { count -= 1 }
    }

    private static func remove(_ words: ArraySlice<TopicPattern.Word>, _ value: Value, from node: Node) -> Bool {
        guard let word = words.first else { return node.values.remove(value) != nil }
        let removed: Bool
        switch word {
        case .literal(let text):
            let key = Substring(text)
            guard let child = node.literals[key] else { return false }
            removed = remove(words.dropFirst(), value, from: child)
            if child.isEmpty { node.literals[key] = nil }
        case .one:
            guard let child = node.one else { return false }
            removed = remove(words.dropFirst(), value, from: child)
            if child.isEmpty { node.one = nil }
        case .any:
            guard let child = node.any else { return false }
            removed = remove(words.dropFirst(), value, from: child)
            if child.isEmpty { node.any = nil }
        }
        return removed
    }

    /// Every value whose pattern matches `topic`, each once.
    package func match(_ topic: String) -> Set<Value> {
        matchCountingNodes(topic).values
    }

    /// ``match(_:)``, also returning how many trie nodes the lookup entered: the measure of its cost, which
    /// tests use to show that it does not grow with patterns that cannot match.
    package func matchCountingNodes(_ topic: String) -> (values: Set<Value>, nodes: Int) {
        var result = Set<Value>()
        let words = topic.split(separator: ".", omittingEmptySubsequences: false)
        var visited = Set<Visit>()
        var nodes = 0
        Self.collect(root, words, 0, &result, &visited, &nodes)
        return (result, nodes)
    }

    /// A `#` node entered at a word index; remembered so that patterns with several `#` never revisit it.
    private struct Visit: Hashable {
        let node: ObjectIdentifier
        let index: Int
    }

    private static func collect(
        _ node: Node,
        _ words: [Substring],
        _ index: Int,
        _ result: inout Set<Value>,
        _ visited: inout Set<Visit>,
        _ nodes: inout Int
    ) {
        nodes += 1
        if let any = node.any {
            // `#` swallows zero or more words: continue below it from every later position.
            for next in index...words.count
            where visited.insert(Visit(node: ObjectIdentifier(any), index: next)).inserted {
                collect(any, words, next, &result, &visited, &nodes)
            }
        }
        guard index < words.count else {
            result.formUnion(node.values)
            return
        }
        if let child = node.literals[words[index]] { collect(child, words, index + 1, &result, &visited, &nodes) }
        if let one = node.one { collect(one, words, index + 1, &result, &visited, &nodes) }
    }
}
