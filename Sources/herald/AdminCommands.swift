import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore
import HeraldProtocol
import HeraldServer

/// The options of every subcommand that talks to a running broker through its HTTP API (PROTOCOL.md §8).
struct HTTPOptions: ParsableArguments {
    @Option(help: "The broker's HTTP listener, host:port.")
    var http = "127.0.0.1:7480"

    @Option(help: "The token to present (default: the HERALD_TOKEN environment variable).")
    var token: String?

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Seconds to wait for the broker's answer (a module load waits for the module).")
    var timeout: Double = 60

    func validate() throws {
        try HeraldCLI.checkTimeout(timeout)
        guard let address = HostPort(http), address.port != 0 else {
            throw ValidationError("--http must be host:port, not '\(http)'")
        }
    }

    var client: HeraldHTTPClient {
        HeraldHTTPClient(address: http, token: token ?? ProcessInfo.processInfo.environment["HERALD_TOKEN"])
    }

    /// Sends the request and returns the JSON body of a 2xx answer; anything else is a one-line reason on
    /// standard error (the API's error message) and a non-zero exit.
    func call(_ method: String, _ path: String) async throws -> [String: Any] {
        try await answer(method, path).json
    }

    /// ``call(_:_:)``'s answer with the bytes it was parsed from: events are printed as the broker sent
    /// them, their payloads byte for byte (PROTOCOL.md §1), not as `JSONSerialization` would write them
    /// again (keys sorted, numbers rewritten, a repeated key dropped).
    func answer(_ method: String, _ path: String) async throws -> (json: [String: Any], bytes: [UInt8]) {
        let response: HeraldHTTPClient.Response
        do {
            response = try await HeraldCLI.answered(within: timeout) { try await client.request(method, path) }
        } catch {
            throw fail("cannot reach the broker at \(http): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            if let error = response.json?["error"] as? [String: Any] {
                throw fail("\(error["code"] ?? response.status): \(error["message"] ?? "")")
            }
            throw fail("HTTP \(response.status) from \(method) \(path)")
        }
        guard let body = response.json else { throw fail("\(method) \(path): the answer is not a JSON object") }
        return (body, response.body)
    }

    /// The elements of the array `key` of the JSON object `body`, each as the text the broker sent.
    static func elements(of key: String, in body: [UInt8]) -> [String] {
        body.withUnsafeBufferPointer { buffer in
            var elements: [String] = []
            var scanner = JSONScanner(buffer)
            try? scanner.readObject { name, scanner throws(JSONSyntaxError) in
                guard name == key, scanner.peek() == UInt8(ascii: "[") else {
                    try scanner.skipValue()
                    return
                }
                try scanner.readArray { element throws(JSONSyntaxError) in
                    let range = try element.skipValue()
                    elements.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[range]), as: UTF8.self))
                }
            }
            return elements
        }
    }

    /// Prints `value` as one line of JSON.
    func printJSON(_ value: Any) {
        let data =
            (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]))
        printLine(String(decoding: data ?? Data(), as: UTF8.self))
    }
}

/// A value of a JSON object as text: `-` for null or absent.
private func text(_ value: Any?) -> String {
    switch value {
    case nil, is NSNull: "-"
    case let string as String: string
    case let number as NSNumber: number.stringValue
    case let list as [Any]: list.map { text($0) }.joined(separator: ",")
    default: "\(value!)"
    }
}

/// Rows as aligned columns.
private func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in
        ([header[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
    }
    for row in [header] + rows {
        let cells = row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
        }
        printLine(cells.joined(separator: "  "))
    }
}

/// `herald modules [list|load|unload|reload NAME]`.
struct Modules: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the modules, or load, unload or reload one.")

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case list, load, unload, reload
    }

    @Argument(help: "list, load, unload or reload.")
    var action: Action = .list

    @Argument(help: "The module to load, unload or reload.")
    var name: String?

    @OptionGroup var options: HTTPOptions

    func validate() throws {
        if action != .list && name == nil { throw ValidationError("\(action.rawValue) needs a module NAME") }
        if action == .list && name != nil { throw ValidationError("list takes no module NAME") }
        if let name, !ClientRequest.isValidModuleName(name) {
            throw ValidationError("NAME must be a module name, 1 to 64 of a-z, 0-9, '_' and '-', not '\(name)'")
        }
    }

    func run() async throws {
        guard action == .list, name == nil else {
            let body = try await options.call("POST", "/v1/modules/\(name!)/\(action.rawValue)")
            let state = text(body["state"])
            let problem = body["problem"] as? String
            let line = "\(action.rawValue): \(name!) is \(state)" + (problem.map { " (\($0))" } ?? "")
            // Done only when the module ended where it was asked to go: loaded (running) or stopped. A load
            // that failed, timed out or waits to restart is a failure (PROTOCOL.md §8), said on stderr.
            let succeeded = state == (action == .unload ? "stopped" : "running")
            if options.json {
                options.printJSON(body)
            } else if succeeded {
                printLine(line)
            }
            if !succeeded { throw fail(line) }
            return
        }
        let body = try await options.call("GET", "/v1/modules")
        let modules = body["modules"] as? [[String: Any]] ?? []
        if options.json { return options.printJSON(body) }
        // `problem` last: why a module is failed or stopped (a refused manifest, a crash loop) shows here.
        let columns = ["name", "version", "state", "health", "pid", "restarts", "loaded_at", "problem"]
        printTable(columns, modules.map { module in columns.map { text(module[$0]) } })
    }
}

/// `herald groups [list | delete GROUP]`: consumer groups with their lag per partition.
struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the consumer groups with their lag, or delete one that has no member.")

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case list, delete
    }

    @Argument(help: "list (the default) or delete.")
    var action: Action = .list

    @Argument(help: "The group to delete.")
    var group: String?

    @OptionGroup var options: HTTPOptions

    func validate() throws {
        switch (action, group) {
        case (.list, nil): break
        case (.list, .some): throw ValidationError("list takes no group")
        case (.delete, nil): throw ValidationError("delete needs the GROUP to delete")
        case (.delete, .some(let group)):
            if !ClientRequest.isValidModuleName(group) {
                throw ValidationError("GROUP must be a group name, 1 to 64 of a-z, 0-9, '_' and '-', not '\(group)'")
            }
        }
    }

    func run() async throws {
        if action == .delete, let group {
            let body = try await options.call("DELETE", "/v1/groups/\(group)")
            if options.json { return options.printJSON(body) }
            return printLine("deleted group \(group)")
        }
        let body = try await options.call("GET", "/v1/groups")
        if options.json { return options.printJSON(body) }
        var rows: [[String]] = []
        for group in body["groups"] as? [[String: Any]] ?? [] {
            for partition in group["partitions"] as? [[String: Any]] ?? [] {
                rows.append(
                    [text(group["name"]), text(group["members"]), text(group["dead_letters"])]
                        + ["partition", "committed", "head", "lag", "oldest_unacked_age_ms"].map { text(partition[$0]) }
                )
            }
        }
        printTable(
            ["group", "members", "dead_letters", "partition", "committed", "head", "lag", "oldest_unacked_age_ms"], rows
        )
    }
}

/// `herald dlq GROUP [list|replay|purge]`: a group's dead-letter queue.
struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "List, replay into the group or purge a group's dead letters.")

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case list, replay, purge
    }

    @Argument(help: "The consumer group.")
    var group: String

    @Argument(help: "list, replay or purge.")
    var action: Action = .list

    @Option(help: "The most dead letters to list (1 to 1000).")
    var limit = 100

    @OptionGroup var options: HTTPOptions

    func validate() throws {
        if !ClientRequest.isValidModuleName(group) {
            throw ValidationError("GROUP must be a group name, 1 to 64 of a-z, 0-9, '_' and '-', not '\(group)'")
        }
        if !(1...1000).contains(limit) { throw ValidationError("--limit must be 1 to 1000, not \(limit)") }
    }

    func run() async throws {
        let path = "/v1/groups/\(group)/dead-letters"
        switch action {
        case .list:
            let (_, bytes) = try await options.answer("GET", path + "?limit=\(limit)")
            if options.json { return printLine(String(decoding: bytes, as: UTF8.self)) }
            // One envelope per line, like `herald tail`, as stored.
            for letter in HTTPOptions.elements(of: "dead_letters", in: bytes) { printLine(letter) }
        case .replay:
            let body = try await options.call("POST", path + "/replay")
            if options.json { return options.printJSON(body) }
            printLine("replayed \(text(body["replayed"])) dead letters into \(group); kept \(text(body["kept"]))")
        case .purge:
            let body = try await options.call("DELETE", path)
            if options.json { return options.printJSON(body) }
            printLine("purged \(text(body["purged"])) dead letters of \(group)")
        }
    }
}

/// `herald replay PATTERN --from …`: stored events, one envelope per line, following the API's cursor.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print stored events matching a pattern.")

    @Argument(help: "The topic pattern.")
    var pattern = "#"

    @Option(help: "earliest, an RFC 3339 time, a cursor, or (with --partition) an offset.")
    var from = "earliest"

    @Option(help: "Only this partition, in offset order.")
    var partition: Int?

    @Option(help: "Stop after this many events (default: every stored event).")
    var limit: Int?

    @OptionGroup var options: HTTPOptions

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        var from = self.from
        var printed = 0
        while limit.map({ printed < $0 }) ?? true {
            let page = min(1000, limit.map { $0 - printed } ?? 1000)
            var query = "topic=\(Self.escape(pattern))&from=\(Self.escape(from))&limit=\(page)"
            if let partition { query += "&partition=\(partition)" }
            let (body, bytes) = try await options.answer("GET", "/v1/events?" + query)
            let events = HTTPOptions.elements(of: "events", in: bytes)
            for event in events { printLine(event) }
            printed += events.count
            // The end of the log: a page that leaves the cursor where it was. A short or empty page is not
            // (a page looks at 100 000 records at most).
            guard let next = body["next"] as? String, !(events.isEmpty && next == from) else { break }
            from = next
        }
    }

    /// Percent-encodes a query value (`#` and `+` above all).
    static func escape(_ value: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "#&+=")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }
}
