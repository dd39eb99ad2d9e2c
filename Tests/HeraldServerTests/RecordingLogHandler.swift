import Logging
import Synchronization

/// A `LogHandler` that keeps every message, for tests that check what a component says in its log.
struct RecordingLogHandler: LogHandler {
    final class Records: Sendable {
        private let lines = Mutex<[String]>([])

        func append(_ line: String) {
            lines.withLock { $0.append(line) }
        }

        var all: [String] { lines.withLock { $0 } }

        func contains(_ text: String) -> Bool {
            lines.withLock { $0.contains { $0.contains(text) } }
        }
    }

    let records: Records
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        records.append("\(event.level) \(event.message) \(fields)")
    }

    /// A logger whose messages end up in `records`.
    static func logger(_ records: Records) -> Logger {
        Logger(label: "test") { _ in RecordingLogHandler(records: records) }
    }
}
