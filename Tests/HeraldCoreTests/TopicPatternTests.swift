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
