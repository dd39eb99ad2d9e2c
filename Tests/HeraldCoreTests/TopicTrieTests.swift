import Testing

@testable import HeraldCore

@Suite struct TopicTrieTests {
    @Test func findsEveryMatchingValueOnce() throws {
        var trie = TopicTrie<Int>()
        trie.insert(try TopicPattern("block.new.*"), 1)
        trie.insert(try TopicPattern("block.#"), 2)
        trie.insert(try TopicPattern("#.138"), 3)
        trie.insert(try TopicPattern("tx.#"), 4)
        trie.insert(try TopicPattern("block.#"), 5)
        // One value under two overlapping patterns is found once.
        trie.insert(try TopicPattern("block.new.138"), 1)
        #expect(trie.match("block.new.138") == [1, 2, 3, 5])
        #expect(trie.match("block.new") == [2, 5])
        #expect(trie.match("tx.pending.138") == [3, 4])
        #expect(trie.match("peer.connected").isEmpty)
    }

    @Test func removesAndPrunes() throws {
        var trie = TopicTrie<Int>()
        let pattern = try TopicPattern("a.*.#")
        trie.insert(pattern, 1)
        trie.insert(pattern, 2)
        #expect(trie.count == 2)
        trie.remove(pattern, 1)
        #expect(trie.match("a.b") == [2])
        trie.remove(pattern, 2)
        trie.remove(pattern, 2)
        #expect(trie.count == 0)
        #expect(trie.match("a.b").isEmpty)
    }

    /// The trie must agree with the pattern's own matcher on every pattern/topic pair.
    @Test func agreesWithThePatternMatcher() throws {
        var generator = SplitMix(seed: 42)
        let words = ["a", "b", "c"]
        func randomPattern() -> String {
            (0..<generator.next(upTo: 5) + 1).map { _ in
                switch generator.next(upTo: 5) {
                case 0: "*"
                case 1: "#"
                default: words[generator.next(upTo: words.count)]
                }
            }.joined(separator: ".")
        }
        let patterns = try (0..<300).map { _ in try TopicPattern(randomPattern()) }
        var trie = TopicTrie<Int>()
        for (index, pattern) in patterns.enumerated() { trie.insert(pattern, index) }
        for _ in 0..<500 {
            let topic = (0..<generator.next(upTo: 6) + 1).map { _ in words[generator.next(upTo: words.count)] }
                .joined(separator: ".")
            let expected = Set(patterns.indices.filter { patterns[$0].matches(topic) })
            #expect(trie.match(topic) == expected, "topic \(topic)")
        }
    }

    /// Routing costs what matches, not what exists: ten thousand patterns that cannot match a topic do not
    /// change how many nodes its lookup enters.
    @Test func lookupCostDoesNotGrowWithNonMatchingPatterns() throws {
        var trie = TopicTrie<Int>()
        trie.insert(try TopicPattern("block.new.*"), 0)
        trie.insert(try TopicPattern("#.138"), 1)
        let before = trie.matchCountingNodes("block.new.138")
        #expect(before.values == [0, 1])
        for index in 0..<10_000 {
            trie.insert(try TopicPattern("chain\(index).new.*"), 100 + index)
            trie.insert(try TopicPattern("block.other\(index).#"), 20_000 + index)
        }
        #expect(trie.count == 20_002)
        let after = trie.matchCountingNodes("block.new.138")
        #expect(after.values == [0, 1])
        #expect(after.nodes == before.nodes)
    }

    @Test func hostilePatternsStayPolynomial() throws {
        // Without memoising `#` visits, this pattern against this topic takes exponential time.
        var trie = TopicTrie<Int>()
        trie.insert(try TopicPattern(Array(repeating: "#.a", count: 30).joined(separator: ".") + ".b"), 1)
        let topic = Array(repeating: "a", count: 60).joined(separator: ".")
        #expect(trie.match(topic).isEmpty)
        #expect(trie.match(topic + ".b") == [1])
    }
}

/// A small deterministic generator so that failures reproduce.
struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next(upTo bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
