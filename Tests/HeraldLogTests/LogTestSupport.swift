import Foundation
import Testing

@testable import HeraldLog

/// A temporary directory, removed by ``remove()``.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "herald-log-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw LogError.io("mkdtemp", "mkdtemp", errno) }
        path = String(cString: made)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension DurableLog {
    /// Appends `text` as the event's bytes, with the given timestamp, and waits until it is durable.
    @discardableResult
    func appendText(_ text: String, partition: Int = 0, timestamp: Int64 = 1_000) async throws -> Int64 {
        try await appendDurably(partition: partition, timestamp: timestamp) { _ in Array(text.utf8) }.offset
    }

    /// Every readable record of `partition` as text.
    func texts(partition: Int = 0, from offset: Int64 = 0) throws -> [String] {
        var texts: [String] = []
        var next = offset
        while true {
            let records = try read(partition: partition, from: next, maximumRecords: 7, maximumBytes: 300)
            guard let last = records.last else { return texts }
            texts += records.map { String(decoding: $0.bytes, as: UTF8.self) }
            next = last.offset + 1
        }
    }
}

/// The size in bytes of the file at `path`.
func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
}

func segmentPath(_ directory: String, partition: Int = 0, base: Int64 = 0) -> String {
    DurableLog.partitionDirectory(directory, partition) + "/" + Segment.name(base) + ".log"
}
