import HeraldCore
import TOMLKit

/// One option of `herald.toml`: its dotted name, how to read it into a ``HeraldConfiguration`` (checking
/// type and range), and how to print it. The table of these is the one description of the file's keys,
/// used by the loader, by `--print-config` and by the documentation test.
struct ConfigurationKey: Sendable {
    let name: String
    let read: @Sendable (inout HeraldConfiguration, any TOMLValueConvertible) throws(ConfigurationError) -> Void
    let render: @Sendable (HeraldConfiguration) -> String

    /// The section of the key (`ipc` for `ipc.max_frame`), or empty for top-level keys.
    var section: String {
        guard let dot = name.firstIndex(of: ".") else { return "" }
        return String(name[..<dot])
    }

    /// The key within its section.
    var field: String {
        guard let dot = name.firstIndex(of: ".") else { return name }
        return String(name[name.index(after: dot)...])
    }

    static func integer<Value: FixedWidthInteger & Sendable>(
        _ name: String,
        _ range: ClosedRange<Int>,
        _ path: WritableKeyPath<HeraldConfiguration, Value> & Sendable
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name,
            read: { configuration, value throws(ConfigurationError) in
                configuration[keyPath: path] = Value(try readInteger(name, value, range))
            },
            render: { String($0[keyPath: path]) }
        )
    }

    static func boolean(_ name: String, _ path: WritableKeyPath<HeraldConfiguration, Bool> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name: name,
            read: { configuration, value throws(ConfigurationError) in
                guard let bool = value.bool else { throw ConfigurationError(key: name, "must be true or false") }
                configuration[keyPath: path] = bool
            },
            render: { String($0[keyPath: path]) }
        )
    }

    static func string(
        _ name: String,
        _ path: WritableKeyPath<HeraldConfiguration, String> & Sendable,
        check: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name,
            read: { configuration, value throws(ConfigurationError) in
                guard let string = value.string else { throw ConfigurationError(key: name, "must be a string") }
                if let problem = check(string) { throw ConfigurationError(key: name, problem) }
                configuration[keyPath: path] = string
            },
            render: { quoted($0[keyPath: path]) }
        )
    }

    static func integers(
        _ name: String,
        _ range: ClosedRange<Int>,
        _ path: WritableKeyPath<HeraldConfiguration, [Int]> & Sendable
    ) -> ConfigurationKey {
        ConfigurationKey(
            name: name,
            read: { configuration, value throws(ConfigurationError) in
                guard let array = value.array, !array.isEmpty else {
                    throw ConfigurationError(key: name, "must be a non-empty array of integers")
                }
                var integers: [Int] = []
                for (index, element) in array.enumerated() {
                    integers.append(try readInteger("\(name)[\(index)]", element, range))
                }
                configuration[keyPath: path] = integers
            },
            render: { "[" + $0[keyPath: path].map(String.init).joined(separator: ", ") + "]" }
        )
    }

    static func patterns(_ name: String, _ path: WritableKeyPath<HeraldConfiguration, [String]> & Sendable)
        -> ConfigurationKey
    {
        ConfigurationKey(
            name: name,
            read: { configuration, value throws(ConfigurationError) in
                configuration[keyPath: path] = try readPatterns(name, value).map(\.text)
            },
            render: { "[" + $0[keyPath: path].map(quoted).joined(separator: ", ") + "]" }
        )
    }

    static func readInteger(_ name: String, _ value: any TOMLValueConvertible, _ range: ClosedRange<Int>)
        throws(ConfigurationError) -> Int
    {
        guard let integer = value.int, range.contains(integer) else {
            throw ConfigurationError(key: name, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return integer
    }

    static func readPatterns(_ name: String, _ value: any TOMLValueConvertible) throws(ConfigurationError)
        -> [TopicPattern]
    {
        guard let array = value.array else { throw ConfigurationError(key: name, "must be an array of topic patterns") }
        var patterns: [TopicPattern] = []
        for (index, element) in array.enumerated() {
            guard let text = element.string else {
                throw ConfigurationError(key: "\(name)[\(index)]", "must be a string")
            }
            do throws(TopicPatternError) {
                patterns.append(try TopicPattern(text))
            } catch {
                throw ConfigurationError(key: "\(name)[\(index)]", error.description)
            }
        }
        return patterns
    }

    /// A TOML basic string.
    static func quoted(_ text: String) -> String {
        "\"" + escaped(text, quotes: true) + "\""
    }

    /// `text` with its control characters written as TOML escapes (`\n`, `\u0001`), and with `quotes`, its
    /// quotes and backslashes too: the body of a basic string, or one line of an error.
    static func escaped(_ text: String, quotes: Bool) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"" where quotes: result += "\\\""
            case "\\" where quotes: result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result +=
                    "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
