import Foundation
import HeraldCore

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

    /// 1: the whole state, always written whole; 2: the state when `journal`'s file began, which holds the
    /// changes since.
    var format = 1
    var group: String
    var topics: [String]
    var partitions: [Position]
    /// The first dead letter still in the queue: those before it were replayed or purged. Absent in files
    /// written before dead letters could be purged, which is 0.
    var deadLettersFrom: Int64?
    /// The generation of this state: the changes since it was written are in `journal.<generation>`
    /// (``GroupStateJournal``). Absent in format 1.
    var journal: Int64?
}

/// `<groups directory>/<name>/state.json`, replaced atomically: written to `state.json.tmp`, synced, renamed
/// over the old file, and the directory synced, so a crash leaves the old state or the new, never a mix.
/// Between two such writes, changes are appended to the journal of the state's generation
/// (``GroupStateWriter``); reading applies them.
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
        guard snapshot.format == 1 || (snapshot.format == 2 && snapshot.journal != nil) else {
            throw .incompatible("\(path): consumer group state format \(snapshot.format) is not one this version reads")
        }
        guard let generation = snapshot.journal else { return snapshot }
        let journal = GroupStateJournal.path(in: directory, generation: generation)
        guard let applied = snapshot.applying(try GroupStateJournal.read(journal)) else {
            throw .incompatible("\(journal): a change names a partition the group's state does not have")
        }
        return applied
    }

    /// Writes `snapshot` in place of the state file, and returns its size in bytes.
    @discardableResult
    func write(_ snapshot: GroupSnapshot) throws(LogError) -> Int {
        let bytes = Self.encode(snapshot)
        try LogFile.makeDirectory(directory)
        let temporary = path + ".tmp"
        if LogFile.exists(temporary) { try LogFile.remove(temporary) }
        let file = try LogFile(path: temporary, create: true)
        try file.write(bytes, at: 0)
        try file.sync()
        guard rename(temporary, path) == 0 else { throw .io(path, "rename", errno) }
        try LogFile.syncDirectory(directory)
        return bytes.count
    }
}

extension GroupStateFile {
    /// The file's JSON, written by hand: the state is written again after every change an ack waits for, and
    /// `JSONEncoder` took most of an ack's time with many events pending (an ack's p50 was about 32 ms at
    /// 10 000 pending and 80 ms at 100 000, docs/benchmarks.md). The keys and their order are `JSONEncoder`'s with `.sortedKeys`, which
    /// wrote the files before; `read` decodes both the same way.
    static func encode(_ snapshot: GroupSnapshot) -> [UInt8] {
        let pendingCount = snapshot.partitions.reduce(0) { $0 + $1.pending.count }
        var writer = JSONWriter(capacity: 256 + 64 * snapshot.partitions.count + 64 * pendingCount)
        writer.append(raw: "{")
        if let deadLettersFrom = snapshot.deadLettersFrom {
            writer.append(raw: #""deadLettersFrom":"#)
            writer.append(integer: deadLettersFrom)
            writer.append(raw: ",")
        }
        writer.append(raw: #""format":"#)
        writer.append(integer: snapshot.format)
        writer.append(raw: #","group":"#)
        writer.append(string: snapshot.group)
        if let journal = snapshot.journal {
            writer.append(raw: #","journal":"#)
            writer.append(integer: journal)
        }
        writer.append(raw: #","partitions":["#)
        for (index, position) in snapshot.partitions.enumerated() {
            writer.append(raw: index == 0 ? #"{"next":"# : #",{"next":"#)
            writer.append(integer: position.next)
            writer.append(raw: #","pending":["#)
            for (index, pending) in position.pending.enumerated() {
                writer.append(raw: index == 0 ? #"{"attempts":"# : #",{"attempts":"#)
                writer.append(integer: pending.attempts)
                writer.append(raw: #","offset":"#)
                writer.append(integer: pending.offset)
                writer.append(raw: #","timestamp":"#)
                writer.append(integer: pending.timestamp)
                writer.append(raw: "}")
            }
            writer.append(raw: "]}")
        }
        writer.append(raw: #"],"topics":["#)
        for (index, topic) in snapshot.topics.enumerated() {
            if index > 0 { writer.append(raw: ",") }
            writer.append(string: topic)
        }
        writer.append(raw: "]}")
        return writer.bytes
    }
}
