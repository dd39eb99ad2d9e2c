import Testing

@testable import HeraldCore

@Suite struct TopicPatternTests {
    @Test(arguments: [
        // `*` matches exactly one word
        ("block.new.*", "block.new.138", true),
        ("block.new.*", "block.new", false),
        ("block.new.*", "block.new.138.extra", false),
        ("*", "notification", true),
        ("*", "block.new", false),
        ("*.new.*", "block.new.1", true),
        // `#` matches zero or more words
        ("block.#", "block", true),
        ("block.#", "block.new", true),
        ("block.#", "block.new.138", true),
        ("block.#", "blocks.new", false),
        ("#", "block.new.138", true),
        ("#", "notification", true),
        ("#.138", "block.new.138", true),
        ("#.138", "138", true),
        ("#.138", "block.new.139", false),
        ("#.138", "block.new.138.x", false),
        ("block.#.138", "block.138", true),
        ("block.#.138", "block.new.a.b.138", true),
        ("a.#.b.#.c", "a.b.c", true),
        ("a.#.b.#.c", "a.x.b.y.z.c", true),
        ("a.#.b.#.c", "a.x.c", false),
        ("#.#", "a", true),
        ("#.*", "a", true),
        ("#.*", "a.b.c", true),
        ("*.#", "a", true),
        ("*.#.*", "a", false),
        ("*.#.*", "a.b", true),
        // literals
        ("block.new", "block.new", true),
        ("block.new", "block.new.138", false),
        ("block.new", "block", false),
        ("block.new.138", "block.new.138", true),
        ("block.new.138", "block.new.1", false),
    ])
    func matchesLikeAMQPTopicExchanges(_ pattern: String, _ topic: String, _ expected: Bool) throws {
        #expect(try TopicPattern(pattern).matches(topic) == expected)
    }

    @Test(arguments: [
        ("", "must not be empty"),
        ("block.", "empty word: '.' must separate two words"),
        (".block", "empty word: '.' must separate two words"),
        ("a..b", "empty word: '.' must separate two words"),
        ("block.new*", "'*' and '#' must be whole words"),
        ("block.#x", "'*' and '#' must be whole words"),
        ("Block.new", "words are lowercase letters, digits and '_'"),
        ("block-new", "words are lowercase letters, digits and '_'"),
        ("block new", "words are lowercase letters, digits and '_'"),
    ])
    func rejectsInvalidPatterns(_ pattern: String, _ message: String) {
        #expect(throws: TopicPatternError(pattern: pattern, message)) { try TopicPattern(pattern) }
    }

    @Test func limitsLength() throws {
        let longest = String(repeating: "a.", count: 127) + "a"
        #expect(longest.utf8.count == 255)
        #expect(throws: Never.self) { try TopicPattern(longest) }
        #expect(throws: TopicPatternError(pattern: longest + "a", "longer than 255 bytes")) {
            try TopicPattern(longest + "a")
        }
    }

    @Test(arguments: [
        ("block.#", "block.*.*", true),
        ("block.#", "block", true),
        ("block.#", "block.new.#", true),
        ("#", "#", true),
        ("#", "anything.*.#", true),
        ("*.#", "#", false),
        ("block.*", "#", false),
        ("block.#", "#", false),
        ("block.*", "block.new", true),
        ("block.new", "block.*", false),
        ("block.*", "block.*.*", false),
        ("#.138", "block.new.138", true),
        ("#.138", "block.*.138", true),
        ("#.138", "#.138", true),
        ("#.138", "block.#", false),
        ("a.#.b", "a.x.#.b", true),
        ("a.#.b", "a.#.x.b", true),
        ("a.*.b", "a.#.b", false),
        ("*.*", "*.#", false),
        ("#.a.#", "a", true),
        ("#.a.#", "x.a.y.#", true),
        ("notification", "notification", true),
        ("notification", "notification.*", false),
    ])
    func coversWhatItMatches(_ outer: String, _ inner: String, _ expected: Bool) throws {
        #expect(try TopicPattern(outer).covers(TopicPattern(inner)) == expected)
    }

    /// Coverage agrees with matching: whenever `outer` covers `inner`, every topic `inner` matches is matched
    /// by `outer`.
    @Test func coverageIsSoundOnSampledTopics() throws {
        var generator = SplitMix(seed: 5)
        let words = ["a", "b"]
        func pattern() throws -> TopicPattern {
            try TopicPattern(
                (0..<(1 + generator.next(upTo: 4))).map { _ in
                    switch generator.next(upTo: 4) {
                    case 0: "*"
                    case 1: "#"
                    default: words[generator.next(upTo: 2)]
                    }
                }.joined(separator: ".")
            )
        }
        let topics = (1...5).flatMap { length in
            (0..<(1 << length)).map { bits in
                (0..<length).map { words[(bits >> $0) & 1] }.joined(separator: ".")
            }
        }
        for _ in 0..<2000 {
            let outer = try pattern()
            let inner = try pattern()
            if outer.covers(inner) {
                for topic in topics where inner.matches(topic) {
                    #expect(outer.matches(topic), "\(outer) covers \(inner) but not \(topic)")
                }
            }
        }
    }

    @Test func hostilePatternsStayPolynomial() throws {
        let pattern = try TopicPattern(Array(repeating: "#.a", count: 40).joined(separator: ".") + ".b")
        let topic = Array(repeating: "a", count: 100).joined(separator: ".")
        #expect(!pattern.matches(topic))
        #expect(pattern.matches(topic + ".b"))
        #expect(!pattern.matches(eventType: topic))
    }

    @Test func foldsRunsOfHash() throws {
        #expect(try TopicPattern("a.#.#.#.b").words == [.literal("a"), .any, .literal("b")])
        #expect(try TopicPattern("a.#.#.#.b").text == "a.#.#.#.b")
    }

    @Test(arguments: [
        ("block.new.*", "block.new", true),
        ("block.new", "block.new", true),
        ("block.#", "block.new", true),
        ("#.138", "block.new", true),
        ("block.new.138", "block.new", true),
        ("block.new.0138", "block.new", false),
        ("block.new.x", "block.new", false),
        ("block.new.*.*", "block.new", false),
        ("tx.#", "block.new", false),
        ("*", "block.new", false),
        ("*.*.*", "block.new", true),
    ])
    func matchesAnEventTypeOnAnyChain(_ pattern: String, _ eventType: String, _ expected: Bool) throws {
        #expect(try TopicPattern(pattern).matches(eventType: eventType) == expected)
    }
}
