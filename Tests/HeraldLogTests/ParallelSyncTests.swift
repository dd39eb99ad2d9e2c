import Foundation
import Testing

@testable import HeraldLog

/// The writer's concurrent `fdatasync`s: every file synced, a failure reported for its own file only, and
/// the helper threads named and stopped.
@Suite(.timeLimit(.minutes(3))) struct ParallelSyncTests {
    /// Files of a temporary directory, and `/dev/null` (whose `fdatasync` fails with `EINVAL`) at `failing`.
    private func files(_ directory: TemporaryDirectory, count: Int, failing: Set<Int>) throws -> [LogFile] {
        try (0..<count).map { index in
            if failing.contains(index) { return try LogFile(path: "/dev/null", create: false) }
            let file = try LogFile(path: "\(directory.path)/file-\(index)", create: true)
            try file.write(Array("record \(index)".utf8), at: 0)
            return file
        }
    }

    @Test(arguments: [0, 1, 3, 7])
    func everyFileIsSyncedAndAFailureIsReportedForItsFileOnly(helpers: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let syncer = ParallelSync(helpers: helpers, name: "test-sync")
        defer { syncer.stop() }
        // Several rounds through the same helpers: each round's results are its own.
        for failing in [Set([2]), [], [0, 5], [7]] {
            let failures = syncer.sync(try files(directory, count: 8, failing: failing))
            #expect(failures.count == 8)
            for (index, failure) in failures.enumerated() {
                if failing.contains(index) {
                    guard case .io(let path, let operation, let code) = failure else {
                        Issue.record("file \(index): expected an I/O error, got \(String(describing: failure))")
                        continue
                    }
                    #expect(path == "/dev/null" && operation == "fsync" && code == EINVAL)
                } else {
                    #expect(failure == nil, "file \(index)")
                }
            }
        }
        #expect(syncer.sync([]).isEmpty)
    }

    @Test func theHelperThreadsAreNamedAndEndWhenStopped() async throws {
        let name = "psync-\(UInt16.random(in: 0...UInt16.max))"
        let syncer = ParallelSync(helpers: 3, name: name)
        try await waitUntil {
            threadNames().filter { $0.hasPrefix(name) }.sorted() == ["\(name)-1", "\(name)-2", "\(name)-3"]
        }
        syncer.stop()
        try await waitUntil { !threadNames().contains { $0.hasPrefix(name) } }
    }

    /// The names of this process's threads, as `top -H` shows them.
    private func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .newlines)
        }
    }
}
