import Foundation
import HeraldCore
import HeraldLog
import Logging
import Testing

@testable import HeraldServer

/// The replay behind `GET /v1/events` (PROTOCOL.md §7): merged by timestamp, ties by partition then offset,
/// and a cursor that continues exactly where a page ended.
@Suite(.timeLimit(.minutes(3)))
struct ReplayTests {
    /// A broker on a 3-partition log holding, per partition, events at the given record timestamps; event
    /// ids are `p<partition>-<offset>`, and odd offsets are of type `tx.odd`, even ones `tx.even`.
    static func broker(_ timestamps: [[Int64]]) async throws -> (Broker, String) {
        let directory = NSTemporaryDirectory() + "herald-replay-" + UUID().uuidString.prefix(8)
        var configuration = HeraldConfiguration()
        configuration.dataDirectory = directory
        configuration.log.partitions = timestamps.count
        configuration.log.dedupWindowMs = 0
        let log = try DurableLog(configuration: configuration.logConfiguration)
        for (partition, times) in timestamps.enumerated() {
            for time in times {
                _ = try await log.appendDurably(partition: partition, timestamp: time) { offset in
                    var fields = EnvelopeFields(eventType: offset % 2 == 0 ? "tx.even" : "tx.odd")
                    fields.eventID = "p\(partition)-\(offset)"
                    fields.offset = offset
                    fields.partition = partition
                    return EventEnvelope(sealing: fields).json
                }
            }
        }
        return (Broker(configuration: configuration, logger: Logger(label: "replay-test"), log: log), directory)
    }

    static func ids(_ page: ReplayPage) throws -> [String] {
        try page.events.map { try EventEnvelope(json: $0, form: .delivered).eventID }
    }

    @Test func pagesMergeByTimestampThenPartitionThenOffset() async throws {
        let (broker, directory) = try await Self.broker([[10, 20, 20], [5, 20, 30], [20]])
        defer {
            broker.log?.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let all = try TopicPattern("#")
        var ids: [String] = []
        var start = ReplayStart.earliest
        var pages = 0
        while true {
            let page = try broker.replay(all, from: start, partition: nil, limit: 2)
            if page.events.isEmpty { break }
            ids += try Self.ids(page)
            start = try #require(ReplayStart(page.next, partitioned: false))
            pages += 1
        }
        #expect(ids == ["p1-0", "p0-0", "p0-1", "p0-2", "p1-1", "p2-0", "p1-2"])
        #expect(pages == 4)
    }

    @Test func aPatternSkipsWhatItDoesNotMatchAndTheCursorStillContinuesExactly() async throws {
        let (broker, directory) = try await Self.broker([[1, 2, 3, 4], [1, 2, 3, 4]])
        defer {
            broker.log?.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let odd = try TopicPattern("tx.odd")
        let first = try broker.replay(odd, from: .earliest, partition: nil, limit: 3)
        #expect(try Self.ids(first) == ["p0-1", "p1-1", "p0-3"])
        let rest = try broker.replay(
            odd, from: try #require(ReplayStart(first.next, partitioned: false)), partition: nil, limit: 3)
        #expect(try Self.ids(rest) == ["p1-3"])
        // One partition, from an offset (inclusive), `next` is the following offset.
        let one = try broker.replay(try TopicPattern("#"), from: .offset(2), partition: 1, limit: 1)
        #expect(try Self.ids(one) == ["p1-2"])
        #expect(one.next == "3")
        // From a time: the first event with timestamp ≥ it in each partition.
        let late = try broker.replay(try TopicPattern("#"), from: .time(4), partition: nil, limit: 10)
        #expect(try Self.ids(late) == ["p0-3", "p1-3"])
    }

    /// A page holds about 4 MiB of events at most, whatever its `limit`, and its `next` continues after it.
    @Test func aPageOfLargeEventsStopsNearItsByteLimit() async throws {
        let (broker, directory) = try await Self.broker([[]])
        defer {
            broker.log?.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let log = try #require(broker.log)
        let payload = RawJSON(unchecked: Array(("\"" + String(repeating: "x", count: 900_000) + "\"").utf8))
        for index in 0..<10 {
            _ = try await log.appendDurably(partition: 0, timestamp: Int64(index)) { offset in
                var fields = EnvelopeFields(eventType: "tx.big")
                fields.eventID = "big-\(index)"
                fields.payload = payload
                fields.offset = offset
                fields.partition = 0
                return EventEnvelope(sealing: fields).json
            }
        }
        let all = try TopicPattern("#")
        let first = try broker.replay(all, from: .earliest, partition: nil, limit: 1000)
        // 900 KB each: the fifth passes 4 MiB.
        #expect(try Self.ids(first) == (0..<5).map { "big-\($0)" })
        let rest = try broker.replay(
            all, from: try #require(ReplayStart(first.next, partitioned: false)), partition: nil, limit: 1000)
        #expect(try Self.ids(rest) == (5..<10).map { "big-\($0)" })
    }

    @Test func aCursorForAnotherNumberOfPartitionsIsRefused() async throws {
        let (broker, directory) = try await Self.broker([[1], [1]])
        defer {
            broker.log?.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
        #expect(ReplayStart("c.0.0", partitioned: false) == .cursor([0, 0]))
        #expect(ReplayStart("c.0.x", partitioned: false) == nil)
        #expect(ReplayStart("7", partitioned: false) == nil)
        #expect(throws: ReplayError.self) {
            try broker.replay(try TopicPattern("#"), from: .cursor([0, 0, 0]), partition: nil, limit: 1)
        }
    }
}
