import Foundation
import Testing

@testable import HeraldServer

/// A module's output cut into log lines (``OutputStream``), read here from a file.
@Suite struct OutputStreamTests {
    /// Every line of `text` as the stream emits it.
    static func lines(of text: String) throws -> [String] {
        let path = NSTemporaryDirectory() + "herald-output-" + UUID().uuidString
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let descriptor = open(path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var stream = OutputStream(descriptor: descriptor, name: "stdout")
        var lines: [String] = []
        stream.read(emit: { _, line in lines.append(line) }, untilEmpty: true)
        stream.flush { _, line in lines.append(line) }
        return lines
    }

    /// A line over 16 KiB is logged in pieces of 16 KiB and its rest: no piece is longer (the end of a long
    /// line that arrived with its newline used to be logged with the piece before it, up to 32 KiB).
    @Test func aLongLineIsLoggedInPiecesOfAtMost16KiB() throws {
        let long = String(repeating: "x", count: 1_000_000)
        let lines = try Self.lines(of: long + "\nshort\n" + String(repeating: "y", count: 16_384) + "\nend")
        #expect(lines.count == 61 + 1 + 1 + 1 + 1)
        #expect(lines.prefix(61).allSatisfy { $0.utf8.count == 16_384 })
        #expect(lines[61].utf8.count == 1_000_000 - 61 * 16_384)
        #expect(Array(lines.suffix(3)) == ["short", String(repeating: "y", count: 16_384), "end"])
        #expect(lines.allSatisfy { $0.utf8.count <= ModuleProcess.longestLine })
    }
}
