/// A subscription pattern over topics, with the semantics of AMQP topic exchanges (PROTOCOL.md §1).
///
/// Words are separated by `.`; `*` matches exactly one word and `#` zero or more. `block.new.*` matches
/// `block.new.138` but not `block.new`; `block.#` matches both; `#.138` every event of chain 138.
public struct TopicPattern: Sendable, Hashable, CustomStringConvertible {
    /// The longest pattern accepted, in UTF-8 bytes.
    public static let maximumBytes = 255

    /// One word of a pattern.
    package enum Word: Sendable, Hashable {
        case literal(String)
        case one
        case any
    }

    /// The pattern as written.
    public let text: String
    /// The words, with runs of `#` folded into one (`#.#` means the same as `#`) so that matching stays
    /// polynomial whatever a client sends.
    package let words: [Word]

    /// Parses and validates `text`: 1 to 255 bytes of words that are `*`, `#` or `[a-z0-9_]+`.
    public init(_ text: String) throws(TopicPatternError) {
        guard !text.isEmpty else { throw TopicPatternError(pattern: text, "must not be empty") }
        guard text.utf8.count <= Self.maximumBytes else {
            throw TopicPatternError(pattern: text, "longer than \(Self.maximumBytes) bytes")
        }
        var words: [Word] = []
        for word in text.split(separator: ".", omittingEmptySubsequences: false) {
            switch word {
            case "": throw TopicPatternError(pattern: text, "empty word: '.' must separate two words")
            case "*": words.append(.one)
            case "#": if words.last != .any { words.append(.any) }
            default:
                for byte in word.utf8 {
                    switch byte {
                    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                        UInt8(ascii: "_"):
                        continue
                    case UInt8(ascii: "*"), UInt8(ascii: "#"):
                        throw TopicPatternError(pattern: text, "'*' and '#' must be whole words")
                    default:
                        throw TopicPatternError(pattern: text, "words are lowercase letters, digits and '_'")
                    }
                }
                words.append(.literal(String(word)))
            }
        }
        self.text = text
        self.words = words
    }

    public var description: String { text }

    /// Patterns are equal when they match the same topics: `block.#.#` equals `block.#`.
    public static func == (lhs: TopicPattern, rhs: TopicPattern) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words)
    }

    /// Whether `topic` (such as `block.new.138`) matches this pattern.
    public func matches(_ topic: String) -> Bool {
        // `#` alone (the default `log.persist`) matches every topic: no need to cut it into words.
        if words.count == 1, words[0] == .any { return true }
        let topicWords = topic.split(separator: ".", omittingEmptySubsequences: false)
        return Self.matches(words[...], topicWords[...]) { pattern, word in pattern == word }
    }

    /// Whether this pattern matches some topic of events of `eventType`: the bare type, or the type followed
    /// by any chain id.
    public func matches(eventType: String) -> Bool {
        if matches(eventType) { return true }
        // One extra word standing for "any chain id": `*`, `#`, or a literal made of digits matches it.
        let typeWords = eventType.split(separator: ".", omittingEmptySubsequences: false).map { Optional($0) }
        return Self.matches(words[...], (typeWords + [nil])[...]) { pattern, word in
            guard let word else {
                let digits = pattern.utf8
                return digits.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
                    && (digits.count == 1 || digits.first != UInt8(ascii: "0"))
            }
            return pattern == word
        }
    }

    /// Whether every word sequence `other` can match is matched by this pattern (PROTOCOL.md §9):
    /// `block.#` covers `block.*.*`; `#` is covered only by `#`, since `#` also matches no words at all.
    public func covers(_ other: TopicPattern) -> Bool {
        Self.isCovered(other, by: [self])
    }

    /// A sufficient test, polynomial (O(this × other), word by word with memoisation): when it says yes,
    /// this pattern covers `other`; it misses some cases where `#` in `other` meets `*` here, which
    /// ``isCovered(_:by:budget:)`` then decides.
    private func coversWordByWord(_ other: TopicPattern) -> Bool {
        var memo: [Int: Bool] = [:]
        let outer = words
        let inner = other.words
        func contained(_ i: Int, _ j: Int) -> Bool {
            // inner[i...] ⊆ outer[j...]
            let key = i * (outer.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if i == inner.count {
                result = outer[j...].allSatisfy { $0 == .any }
            } else if j == outer.count {
                result = false
            } else {
                switch (inner[i], outer[j]) {
                case (.any, .any):
                    result = contained(i + 1, j) || contained(i, j + 1)
                case (_, .any):
                    result = contained(i, j + 1) || contained(i + 1, j)
                case (.any, _):
                    result = false
                case (.one, .one), (.literal, .one):
                    result = contained(i + 1, j + 1)
                case (.literal(let a), .literal(let b)):
                    result = a == b && contained(i + 1, j + 1)
                case (.one, .literal):
                    result = false
                }
            }
            memo[key] = result
            return result
        }
        return contained(0, 0)
    }

    /// Whether every topic `pattern` can match is matched by one of `patterns` (PROTOCOL.md §9: a token's
    /// `subscribe` patterns cover a subscription together, `a.*` and `a.*.*.#` cover `a.*.#`).
    ///
    /// First the cheap answers: `pattern` is one of them, or one alone covers it word by word. Otherwise
    /// each pattern is an automaton over words (`#` a state that loops), and `pattern`'s language must be
    /// included in the union's: no word sequence may reach an accepting state of `pattern` and none of
    /// theirs. The search runs over pairs (a state of `pattern`, the set of states the union is in — a bit
    /// set, made as it goes), reading only words that can tell the patterns apart: each literal they name and
    /// one word none names. It is exact, `#` and `*` anywhere on either side, but patterns can be built to
    /// make the sets blow up: past `budget` steps it answers "not covered" — a refusal, never a grant, in
    /// bounded time (it runs on an event loop).
    public static func isCovered(_ pattern: TopicPattern, by patterns: [TopicPattern], budget: Int = 200_000)
        -> Bool
    {
        if patterns.contains(where: { $0 == pattern || $0.coversWordByWord(pattern) }) { return true }
        // The union's states, numbered one after the other: which pattern and position each one is.
        var owners: [(pattern: Int, position: Int)] = []
        var bases: [Int] = []
        for (index, covering) in patterns.enumerated() {
            bases.append(owners.count)
            for position in 0...covering.words.count { owners.append((index, position)) }
        }
        let wordCount = (owners.count + 63) / 64
        var alphabet: [String?] = [nil]
        for covering in patterns + [pattern] {
            for case .literal(let text) in covering.words where !alphabet.contains(text) { alphabet.append(text) }
        }
        var work = 0
        func insertClosure(_ covering: Int, _ position: Int, into set: inout [UInt64]) {
            let words = patterns[covering].words
            var position = position
            while true {
                let state = bases[covering] + position
                set[state >> 6] |= 1 << UInt64(state & 63)
                guard position < words.count, words[position] == .any else { return }
                position += 1
            }
        }
        /// Where a pattern's words can be after reading `word` (`nil`: a word no pattern names) at `position`.
        func step(_ words: [Word], _ position: Int, _ word: String?) -> Int? {
            guard position < words.count else { return nil }
            switch words[position] {
            case .any: return position
            case .one: return position + 1
            case .literal(let text): return text == word ? position + 1 : nil
            }
        }
        func closure(_ words: [Word], _ position: Int) -> [Int] {
            var positions = [position]
            var position = position
            while position < words.count, words[position] == .any {
                position += 1
                positions.append(position)
            }
            return positions
        }
        var start = [UInt64](repeating: 0, count: wordCount)
        for index in patterns.indices { insertClosure(index, 0, into: &start) }
        let accepting: [UInt64] = {
            var set = [UInt64](repeating: 0, count: wordCount)
            for (index, covering) in patterns.enumerated() {
                let state = bases[index] + covering.words.count
                set[state >> 6] |= 1 << UInt64(state & 63)
            }
            return set
        }()
        struct Pair: Hashable {
            let position: Int
            let union: [UInt64]
        }
        var seen: Set<Pair> = []
        var queue = closure(pattern.words, 0).map { Pair(position: $0, union: start) }
        while let pair = queue.popLast() {
            guard seen.insert(pair).inserted else { continue }
            if pair.position == pattern.words.count && !zip(pair.union, accepting).contains(where: { $0 & $1 != 0 }) {
                return false
            }
            for word in alphabet {
                guard let next = step(pattern.words, pair.position, word) else { continue }
                var union = [UInt64](repeating: 0, count: wordCount)
                for (chunk, bits) in pair.union.enumerated() where bits != 0 {
                    var remaining = bits
                    while remaining != 0 {
                        let state = chunk << 6 + remaining.trailingZeroBitCount
                        remaining &= remaining - 1
                        work += 1
                        let owner = owners[state]
                        if let moved = step(patterns[owner.pattern].words, owner.position, word) {
                            insertClosure(owner.pattern, moved, into: &union)
                        }
                    }
                }
                guard work <= budget else { return false }
                for position in closure(pattern.words, next) { queue.append(Pair(position: position, union: union)) }
            }
        }
        return true
    }

    /// Matches by dynamic programming over (pattern word, topic word): O(pattern × topic) whatever the
    /// pattern, so a hostile `#.a.#.a…` cannot make matching exponential.
    private static func matches<W>(
        _ pattern: ArraySlice<Word>,
        _ topic: ArraySlice<W>,
        literal: (String, W) -> Bool
    ) -> Bool {
        let topic = Array(topic)
        // matched[j]: the pattern words so far match the first j topic words.
        var matched = [Bool](repeating: false, count: topic.count + 1)
        matched[0] = true
        for word in pattern {
            var next = [Bool](repeating: false, count: topic.count + 1)
            switch word {
            case .any:
                var any = false
                for j in 0...topic.count {
                    any = any || matched[j]
                    next[j] = any
                }
            case .one:
                for j in stride(from: 1, through: topic.count, by: 1) { next[j] = matched[j - 1] }
            case .literal(let text):
                for j in stride(from: 1, through: topic.count, by: 1) {
                    next[j] = matched[j - 1] && literal(text, topic[j - 1])
                }
            }
            matched = next
        }
        return matched[topic.count]
    }
}

/// Why a topic pattern is invalid; on the wire, the `invalid_topic` error.
public struct TopicPatternError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The pattern as given.
    public let pattern: String
    /// What is wrong with it.
    public let message: String

    package init(pattern: String, _ message: String) {
        self.pattern = pattern
        self.message = message
    }

    /// Quotes at most 255 bytes of the pattern (a longer one is an error of its own).
    public var description: String {
        let quoted =
            pattern.utf8.count <= 255 ? pattern : String(decoding: pattern.utf8.prefix(252), as: UTF8.self) + "…"
        return "pattern '\(quoted)': \(message)"
    }
}
