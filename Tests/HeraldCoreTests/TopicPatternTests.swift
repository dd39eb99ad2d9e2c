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
        // `#` on the covered side, against `*` and `#` on the covering side.
        ("a.*.#", "a.#.b", true),
        ("a.*.#", "a.#.*", true),
        ("#.*", "a.#", true),
        ("#.*", "*.#", true),
        ("*.*.#", "a.#.b", true),
        ("a.*.#", "a.#", false),
        ("*.*.#", "a.#", false),
        ("#.*", "#", false),
    ])
    func coversWhatItMatches(_ outer: String, _ inner: String, _ expected: Bool) throws {
        #expect(try TopicPattern(outer).covers(TopicPattern(inner)) == expected)
    }

    @Test(arguments: [
        (["a.*", "a.*.*.#"], "a.*.#", true),
        (["a.*", "a.*.*.#"], "a.b.#", true),
        (["a.*", "a.*.*.#"], "a.#", false),
        (["block.new.*", "block.reorg.*"], "block.*.1", false),
        (["block.new.#", "block.*"], "block.new", true),
        (["x", "y"], "#", false),
    ])
    func severalPatternsCoverTogether(_ outers: [String], _ inner: String, _ expected: Bool) throws {
        #expect(try TopicPattern.isCovered(TopicPattern(inner), by: outers.map { try TopicPattern($0) }) == expected)
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

    /// And the other way: whenever every topic `inner` matches (up to six words of `a`, `b` and a third word
    /// neither names, and no words at all) is matched by `outer`, `outer` covers `inner`. Short patterns have short
    /// counterexamples, so six words find any.
    @Test func coverageIsCompleteOnSampledTopics() throws {
        var generator = SplitMix(seed: 11)
        let words = ["a", "b"]
        func pattern() throws -> TopicPattern {
            try TopicPattern(
                (0..<(1 + generator.next(upTo: 3))).map { _ in
                    switch generator.next(upTo: 4) {
                    case 0: "*"
                    case 1: "#"
                    default: words[generator.next(upTo: 2)]
                    }
                }.joined(separator: ".")
            )
        }
        let alphabet = ["a", "b", "c"]
        var topics: [String] = []
        var layer = [""]
        for _ in 1...6 {
            layer = layer.flatMap { prefix in alphabet.map { prefix.isEmpty ? $0 : prefix + "." + $0 } }
            topics += layer
        }
        for _ in 0..<500 {
            let outer = try pattern()
            let inner = try pattern()
            // No words at all, which only patterns of `#` alone match (§9: `#` is covered only by `#`).
            func matchesNothingAtAll(_ pattern: TopicPattern) -> Bool { pattern.words.allSatisfy { $0 == .any } }
            let matchedByBoth =
                topics.allSatisfy { !inner.matches($0) || outer.matches($0) }
                && (!matchesNothingAtAll(inner) || matchesNothingAtAll(outer))
            #expect(outer.covers(inner) == matchedByBoth, "\(outer) and \(inner)")
        }
    }

    /// A token of hostile patterns: a pattern that is one of them is covered at once; the search for others
    /// stops at its budget and refuses (it runs on an event loop: the suite's time limit bounds it).
    @Test func hostileCoveringPatternsAnswerWithinTheBudget() throws {
        let hostileA = try TopicPattern(Array(repeating: "#.a", count: 60).joined(separator: ".") + ".#")
        let hostileB = try TopicPattern(Array(repeating: "#.b", count: 60).joined(separator: ".") + ".#")
        #expect(TopicPattern.isCovered(hostileA, by: [hostileA, hostileB]))
        let probe = try TopicPattern(Array(repeating: "#.a.#.b", count: 30).joined(separator: "."))
        #expect(!TopicPattern.isCovered(probe, by: [hostileA, hostileB], budget: 10_000))
        // Many ordinary patterns: a pattern one of them covers is found without the search.
        let ordinary = try (1...40).map {
            try TopicPattern("#." + Array(repeating: "a", count: $0).joined(separator: ".") + ".#")
        }
        #expect(TopicPattern.isCovered(try TopicPattern("a.#"), by: ordinary, budget: 0))
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
