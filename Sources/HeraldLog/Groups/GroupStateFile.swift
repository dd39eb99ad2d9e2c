import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a consumer group keeps across restarts (docs/storage.md "Consumer groups"): its topics and, per
/// partition, the read position and the events delivered but not yet acknowledged. The committed offset is
/// derived: the first pending offset, or the read position when nothing is pending.
struct GroupSnapshot: Codable, Equatable {
    struct Pending: Codable, Equatable {
        var offset: Int64
        /// Deliveries made so far.
        var attempts: Int
        /// When the event was accepted, milliseconds since 1970.
        var timestamp: Int64
    }

    struct Position: Codable, Equatable {
        /// Every offset before it was delivered, or skipped as not matching the group's topics.
        var next: Int64
        var pending: [Pending]
    }

    var format = 1
    var group: String
    var topics: [String]
    var partitions: [Position]
    /// The first dead letter still in the queue: those before it were replayed or purged. Absent in files
    /// written before dead letters could be purged, which is 0.
    var deadLettersFrom: Int64?
}

/// `<groups directory>/<name>/state.json`, replaced atomically: written to `state.json.tmp`, synced, renamed
/// over the old file, and the directory synced, so a crash leaves the old state or the new, never a mix.
struct GroupStateFile: Sendable {
    let directory: String

    var path: String { directory + "/state.json" }

    func read() throws(LogError) -> GroupSnapshot? {
        guard LogFile.exists(path) else { return nil }
        let file = try LogFile(path: path, create: false)
        var bytes: [UInt8] = []
        try file.read(into: &bytes, count: try file.size(), at: 0)
        guard let snapshot = try? JSONDecoder().decode(GroupSnapshot.self, from: Data(bytes)) else {
            throw .incompatible("\(path): not a consumer group state this version reads")
        }
        guard snapshot.format == 1 else {
            throw .incompatible("\(path): consumer group state format \(snapshot.format) is not one this version reads")
        }
        return snapshot
    }

    func write(_ snapshot: GroupSnapshot) throws(LogError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Plain numbers, strings and arrays: encoding cannot fail.
        let bytes = Array((try? encoder.encode(snapshot)) ?? Data())
        try LogFile.makeDirectory(directory)
        let temporary = path + ".tmp"
        if LogFile.exists(temporary) { try LogFile.remove(temporary) }
        let file = try LogFile(path: temporary, create: true)
        try file.write(bytes, at: 0)
        try file.sync()
        guard rename(temporary, path) == 0 else { throw .io(path, "rename", errno) }
        try LogFile.syncDirectory(directory)
    }
}
