import Foundation

/// Each partition's end offset as last known synced, in the file `synced-ends` of the log's directory:
/// written after every full sync (a flush, the close) and after each journal checkpoint; compared at open.
///
/// Recovery finds a torn or corrupt tail by its records, but a segment cut exactly at a record's end (a
/// file system that lost its last blocks, a copy cut short, a hand) still reads as a whole log that simply
/// ends earlier. A partition that opens with fewer records than were known synced lost acknowledged events:
/// the open reports it (``RecoveryReport/recordsLost``) and the broker logs an error.
///
/// The file is text (`synced-ends 1`, then `<partition> <end>` per line), replaced whole by a rename after
/// its new copy is synced, so a crash leaves the old one or the new one.
enum SyncedEnds {
    static let fileName = "synced-ends"

    /// The ends the file records, by partition; `nil` when there is none, or it is not one this version
    /// reads (a check that cannot be made is not a loss).
    static func read(directory: String) -> [Int: Int64]? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(fileName)") else { return nil }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        guard lines.first == "synced-ends 1" else { return nil }
        var ends: [Int: Int64] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let partition = Int(fields[0]), let end = Int64(fields[1]) else { return nil }
            ends[partition] = end
        }
        return ends
    }

    /// Replaces the file with `ends` (by partition index).
    static func write(_ ends: [Int64], directory: String) throws(LogError) {
        let text = "synced-ends 1\n" + ends.enumerated().map { "\($0.offset) \($0.element)\n" }.joined()
        let path = "\(directory)/\(fileName)"
        let temporary = path + ".new"
        let file = try LogFile(path: temporary, create: true)
        try file.truncate(to: 0)
        try file.write(Array(text.utf8), at: 0)
        try file.sync()
        guard rename(temporary, path) == 0 else {
            throw LogError.io(temporary, "rename", errno)
        }
        try LogFile.syncDirectory(directory)
    }
}
