import Foundation

/// Each partition's end offset as last known synced, in the file `synced-ends` of the log's directory:
/// written after every full sync (a flush, the close) and after each journal checkpoint; compared at open.
///
/// Recovery finds a torn or corrupt tail by its records, but a segment cut exactly at a record's end (a
/// file system that lost its last blocks, a copy cut short, a hand) still reads as a whole log that simply
/// ends earlier. A partition that opens with fewer records than were known synced lost acknowledged events:
/// the open reports it (``RecoveryReport/recordsLost``) and the broker logs an error.
///
/// The file is text — `synced-ends 1`, a `<partition> <end>` line per partition, `crc <CRC-32C of the lines
/// before>` — padded with spaces to whole 4 KiB blocks, and overwritten in place: its size never changes,
/// so its `fdatasync` writes one block and no metadata (a new file renamed over it would commit the file
/// system's journal at every checkpoint, which the journal's own syncs then wait behind). A write torn by a
/// crash fails its checksum and checks nothing: a check that cannot be made is not a loss, and the ends only
/// ever grow, so an older file never reports a loss that is not one.
enum SyncedEnds {
    static let fileName = "synced-ends"

    /// The ends the file records, by partition; `nil` when there is none, or it does not read back whole.
    static func read(directory: String) -> [Int: Int64]? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(fileName)") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let crcLine = text.range(of: "crc ") else { return nil }
        let body = text[..<crcLine.lowerBound]
        let crc = text[crcLine.upperBound...].prefix { $0.isHexDigit }
        guard UInt32(crc, radix: 16) == checksum(body) else { return nil }
        let lines = body.split(separator: "\n")
        guard lines.first == "synced-ends 1" else { return nil }
        var ends: [Int: Int64] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let partition = Int(fields[0]), let end = Int64(fields[1]) else { return nil }
            ends[partition] = end
        }
        return ends
    }

    /// Writes `ends` (by partition index) over the file and syncs it.
    static func write(_ ends: [Int64], directory: String) throws(LogError) {
        let body = "synced-ends 1\n" + ends.enumerated().map { "\($0.offset) \($0.element)\n" }.joined()
        var bytes = Array((body + "crc " + String(checksum(Substring(body)), radix: 16) + "\n").utf8)
        // Room for every partition at the largest end, so the size stays the same from write to write.
        let size = (64 + ends.count * 32 + 4095) / 4096 * 4096
        bytes += [UInt8](repeating: UInt8(ascii: " "), count: max(0, size - bytes.count))
        let file = try LogFile(path: "\(directory)/\(fileName)", create: true)
        try file.write(bytes, at: 0)
        try file.sync()
    }

    private static func checksum(_ text: Substring) -> UInt32 {
        Array(text.utf8).withUnsafeBytes { CRC32C.checksum($0) }
    }
}
