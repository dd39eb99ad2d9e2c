import Foundation
import HeraldCore
import HeraldProtocol
import TOMLKit

extension ModuleManifest {
    /// The name of a module's manifest inside its folder.
    public static let fileName = "module.toml"

    /// Reads and checks `<folder>/module.toml`. Every field is checked: an unknown key, a wrong type, a bad
    /// name or version, an `entry_point` that leaves the folder or is not an executable file, a dependency
    /// on itself; the error names the file and the key. Dependencies between modules are checked by
    /// ``ModuleDirectory``.
    public static func load(folder: String) throws(ManifestError) -> ModuleManifest {
        let folder = URL(fileURLWithPath: folder).standardizedFileURL.path
        let file = folder + "/" + fileName
        let text: String
        do throws(TextFileError) {
            text = try TextFile.read(file)
        } catch {
            throw ManifestError(file: file, "cannot be read: \(error)")
        }
        if let line = TOMLText.lineOfNulByte(in: text) {
            throw ManifestError(file: file, "line \(line): a NUL byte (0x00), which TOML does not allow")
        }
        if let nul = TOMLText.nulEscape(in: text) {
            throw ManifestError(
                file: file, "line \(nul.line): \(nul.key ?? "a key") holds \\u0000 (NUL), which no setting may hold")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ManifestError(file: file, "not valid TOML at \(error.source.begin.debugDescription): \(error)")
        } catch {
            throw ManifestError(file: file, "not valid TOML: \(error)")
        }
        var reader = ManifestReader(file: file)
        return try reader.read(table, folder: folder)
    }

    /// Whether `name` is a module name, as `hello` requires.
    static func isValidName(_ name: String) -> Bool {
        ClientRequest.isValidModuleName(name)
    }

    /// Whether `version` is a semantic version: `MAJOR.MINOR.PATCH`, numbers without leading zeros, then
    /// optionally `-prerelease` and `+build` of `[0-9A-Za-z.-]`.
    static func isValidVersion(_ version: String) -> Bool {
        guard version.utf8.count <= 64 else { return false }
        var core = Substring(version)
        var suffix = Substring("")
        if let mark = version.firstIndex(where: { $0 == "-" || $0 == "+" }) {
            core = version[..<mark]
            suffix = version[version.index(after: mark)...]
            let allowed = suffix.allSatisfy {
                $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "+")
            }
            guard allowed, !suffix.isEmpty else { return false }
        }
        let numbers = core.split(separator: ".", omittingEmptySubsequences: false)
        return numbers.count == 3
            && numbers.allSatisfy { number in
                !number.isEmpty && number.allSatisfy { $0.isASCII && $0.isNumber }
                    && (number == "0" || !number.hasPrefix("0"))
            }
    }
}

/// Reads the fields of one manifest, each with an error naming it.
private struct ManifestReader {
    let file: String

    private func error(_ key: String, _ message: String) -> ManifestError {
        ManifestError(file: file, key: key, message)
    }

    mutating func read(_ table: TOMLTable, folder: String) throws(ManifestError) -> ModuleManifest {
        let known = ["name", "version", "entry_point", "args", "depends_on", "permissions", "restart", "env", "limits"]
        for key in table.keys.sorted() where !known.contains(key) {
            throw error(key, "unknown key")
        }
        let name = try string(table, "name", required: true)!
        guard ModuleManifest.isValidName(name) else {
            throw error("name", "'\(name)' must be 1 to 64 of a-z, 0-9, '_' and '-'")
        }
        guard name != ClientRequest.brokerName else { throw error("name", "'\(name)' is the broker's own name") }
        let folderName = URL(fileURLWithPath: folder).lastPathComponent
        guard name == folderName else {
            throw error("name", "'\(name)' must be the name of the module's folder, '\(folderName)'")
        }
        let version = try string(table, "version", required: true)!
        guard ModuleManifest.isValidVersion(version) else {
            throw error("version", "'\(version)' is not a semantic version such as 1.0.0")
        }
        let entryPoint = try self.entryPoint(try string(table, "entry_point", required: true)!, folder: folder)
        var manifest = ModuleManifest(name: name, version: version, folder: folder, entryPoint: entryPoint)
        manifest.arguments = try strings(table, "args")
        manifest.dependencies = try strings(table, "depends_on")
        for (index, dependency) in manifest.dependencies.enumerated() {
            guard ModuleManifest.isValidName(dependency) else {
                throw error("depends_on[\(index)]", "'\(dependency)' is not a module name")
            }
            if dependency == name { throw error("depends_on[\(index)]", "a module cannot depend on itself") }
        }
        if let permissions = try section(table, "permissions", keys: ["publish", "subscribe"]) {
            if permissions["publish"] != nil { manifest.publish = try patterns(permissions, "permissions.publish") }
            if permissions["subscribe"] != nil {
                manifest.subscribe = try patterns(permissions, "permissions.subscribe")
            }
        }
        if let restart = try section(table, "restart", keys: ["policy", "max_restarts", "backoff_ms"]) {
            if let policy = try string(restart, "restart.policy") {
                guard let value = ModuleManifest.Restart.Policy(rawValue: policy) else {
                    throw error("restart.policy", #"must be "never", "on-failure" or "always""#)
                }
                manifest.restart.policy = value
            }
            manifest.restart.maxRestarts = try integer(restart, "restart.max_restarts", 0...1000) ?? 5
            manifest.restart.backoffMs =
                try integer(restart, "restart.backoff_ms", 0...ModuleManifest.Restart.longestBackoffMs) ?? 1000
        }
        if let env = try section(table, "env", keys: nil) {
            for key in env.keys.sorted() {
                let valid =
                    !key.isEmpty && !(key.first!.isNumber)
                    && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
                guard valid else { throw error("env.\(key)", "is not a valid variable name") }
                guard !key.hasPrefix("HERALD_") else {
                    throw error("env.\(key)", "HERALD_ variables are set by the broker")
                }
                guard let value = env[key]!.string else { throw error("env.\(key)", "must be a string") }
                manifest.environment[key] = value
            }
        }
        if let limits = try section(table, "limits", keys: ["memory_mb", "open_files"]) {
            manifest.limits.memoryMB = try integer(limits, "limits.memory_mb", 1...1_048_576)
            manifest.limits.openFiles = try integer(limits, "limits.open_files", 16...1_048_576)
        }
        return manifest
    }

    /// `entry_point`: relative to the folder, no `..`, an executable regular file (a symbolic link inside
    /// the folder may point anywhere: the folder's owner put it there).
    private func entryPoint(_ path: String, folder: String) throws(ManifestError) -> String {
        guard !path.isEmpty else { throw error("entry_point", "must not be empty") }
        guard !path.hasPrefix("/") else {
            throw error("entry_point", "'\(path)' must be relative to the module's folder")
        }
        guard !path.split(separator: "/").contains("..") else {
            throw error("entry_point", "'\(path)' must not contain '..'")
        }
        let full = folder + "/" + path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory) else {
            throw error("entry_point", "'\(path)' does not exist")
        }
        guard !isDirectory.boolValue else { throw error("entry_point", "'\(path)' is a directory") }
        guard FileManager.default.isExecutableFile(atPath: full) else {
            throw error("entry_point", "'\(path)' is not executable (chmod +x)")
        }
        return URL(fileURLWithPath: full).standardizedFileURL.path
    }

    private func section(_ table: TOMLTable, _ name: String, keys: [String]?) throws(ManifestError) -> TOMLTable? {
        guard let value = table[name] else { return nil }
        guard let section = value.table else { throw error(name, "must be a table") }
        if let keys {
            for key in section.keys.sorted() where !keys.contains(key) {
                throw error("\(name).\(key)", "unknown key")
            }
        }
        return section
    }

    private func field(_ key: String) -> String {
        String(key.split(separator: ".").last!)
    }

    private func string(_ table: TOMLTable, _ key: String, required: Bool = false) throws(ManifestError) -> String? {
        guard let value = table[field(key)] else {
            if required { throw error(key, "required") }
            return nil
        }
        guard let string = value.string else { throw error(key, "must be a string") }
        return string
    }

    private func strings(_ table: TOMLTable, _ key: String) throws(ManifestError) -> [String] {
        guard let value = table[field(key)] else { return [] }
        guard let array = value.array else { throw error(key, "must be an array of strings") }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.string else { throw error("\(key)[\(index)]", "must be a string") }
            strings.append(string)
        }
        return strings
    }

    private func patterns(_ table: TOMLTable, _ key: String) throws(ManifestError) -> [TopicPattern] {
        var patterns: [TopicPattern] = []
        for (index, text) in try strings(table, key).enumerated() {
            do {
                patterns.append(try TopicPattern(text))
            } catch {
                throw self.error("\(key)[\(index)]", "'\(text)' is not a topic pattern: \(error)")
            }
        }
        return patterns
    }

    private func integer(_ table: TOMLTable, _ key: String, _ range: ClosedRange<Int>) throws(ManifestError) -> Int? {
        guard let value = table[field(key)] else { return nil }
        guard let integer = value.int, range.contains(integer) else {
            throw error(key, "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return integer
    }
}
