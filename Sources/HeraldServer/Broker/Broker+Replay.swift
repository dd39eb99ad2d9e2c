import HeraldCore
import HeraldLog

/// Where a replay of stored events starts (`GET /v1/events`, PROTOCOL.md §7).
enum ReplayStart: Equatable {
    case earliest
    /// The first event with timestamp ≥ this, milliseconds since 1970.
    case time(Int64)
    /// An offset, inclusive: only with one partition.
    case offset(Int64)
    /// Where an earlier page ended: the next offset of every partition.
    case cursor([Int64])

    /// Reads `from`: `earliest`, an RFC 3339 time, a cursor (`c.<offset>.<offset>…`, one offset per
    /// partition) or, when `partitioned`, an offset.
    init?(_ text: String, partitioned: Bool) {
        if text == "earliest" {
            self = .earliest
        } else if let time = Timestamp.millisecondsSinceEpoch(text, anyOffset: true) {
            self = .time(time)
        } else if partitioned, let offset = Int64(text), offset >= 0 {
            self = .offset(offset)
        } else if text.hasPrefix("c."), !partitioned {
            let offsets = text.dropFirst(2).split(separator: ".", omittingEmptySubsequences: false).map { Int64($0) }
            guard !offsets.isEmpty, offsets.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
            self = .cursor(offsets.map { $0! })
        } else {
            return nil
        }
    }

    /// The cursor text for `offsets`, one per partition.
    static func cursorText(_ offsets: [Int64]) -> String {
        "c." + offsets.map(String.init).joined(separator: ".")
    }
}

/// One page of stored events and where the next page starts.
struct ReplayPage {
    /// Stored envelopes, in replay order.
    var events: [[UInt8]] = []
    /// What to pass back as `from` to continue exactly after this page: an offset with one partition, a
    /// cursor otherwise.
    var next: String = ""
}

/// Why a replay could not be read.
enum ReplayError: Error {
    /// The cursor names another number of partitions than the log has.
    case cursorMismatch(expected: Int, found: Int)
    case partitionOutOfRange(Int, count: Int)
    case storage(LogError)
}

extension Broker {
    /// How many records one page may look at before it ends short of `limit`, so that a pattern matching
    /// few events cannot make one request scan the whole log.
    static let replayScanBudget = 100_000

    /// About the most bytes of events one page holds (it always holds at least one): a thousand envelopes of
    /// up to `max_frame` each would otherwise be gigabytes in memory, copied twice more into the reply.
    static let replayPageBytes = 4 << 20

    /// The most bytes a partition reads ahead for a page: with 1024 partitions, a megabyte each (the log's
    /// default) would be a gigabyte.
    static let replayReadAheadBytes = 256 << 10

    /// Stored events whose topic `pattern` matches, at most `limit`: from one partition in offset order, or
    /// from all merged by timestamp (ties by partition, then offset). A page that reaches the end of the
    /// log, or its scan budget, ends early; its `next` continues exactly where it ended.
    func replay(_ pattern: TopicPattern, from start: ReplayStart, partition: Int?, limit: Int) throws(ReplayError)
        -> ReplayPage
    {
        guard let log else { return ReplayPage() }
        let count = log.partitionCount
        let partitions: [Int]
        if let partition {
            guard (0..<count).contains(partition) else { throw .partitionOutOfRange(partition, count: count) }
            partitions = [partition]
        } else {
            partitions = Array(0..<count)
        }
        if case .cursor(let offsets) = start, offsets.count != count {
            throw .cursorMismatch(expected: count, found: offsets.count)
        }
        var scanners: [ReplayScanner] = []
        do throws(LogError) {
            for partition in partitions {
                let bounds = log.bounds(partition: partition)
                let position: Int64 =
                    switch start {
                    case .earliest: bounds.start
                    case .time(let time): try log.offset(partition: partition, atOrAfter: time)
                    case .offset(let offset): offset
                    case .cursor(let offsets): offsets[partition]
                    }
                scanners.append(ReplayScanner(partition: partition, position: max(position, bounds.start)))
            }
        } catch {
            throw .storage(error)
        }
        var page = ReplayPage()
        var budget = Self.replayScanBudget
        var pageBytes = 0
        do throws(LogError) {
            merging: while page.events.count < limit, pageBytes < Self.replayPageBytes {
                // Every partition shows its next matching record (or is exhausted) before one is chosen, so
                // that the merge order holds across pages.
                for index in scanners.indices {
                    try scanners[index].findHead(in: log, matching: pattern, budget: &budget)
                    if !scanners[index].isSettled { break merging }
                }
                guard
                    let chosen = scanners.indices.filter({ scanners[$0].head != nil }).min(by: { a, b in
                        let x = scanners[a].head!
                        let y = scanners[b].head!
                        return (x.timestamp, x.partition, x.offset) < (y.timestamp, y.partition, y.offset)
                    })
                else { break }
                page.events.append(scanners[chosen].takeHead().bytes)
                pageBytes += page.events.last!.count
            }
        } catch {
            throw .storage(error)
        }
        page.next =
            partition != nil
            ? String(scanners[0].resumeOffset) : ReplayStart.cursorText(scanners.map(\.resumeOffset))
        return page
    }
}

/// One partition's side of a replay: the records read ahead, and the next matching one.
private struct ReplayScanner {
    let partition: Int
    /// The offset of the next record not yet looked at.
    var position: Int64
    /// The next matching record, not yet given out.
    var head: StoredRecord?
    private var readAhead: [StoredRecord] = []
    private var readIndex = 0
    /// The end of the partition was reached with no matching record left.
    private var exhausted = false

    init(partition: Int, position: Int64) {
        self.partition = partition
        self.position = position
    }

    /// Whether the scanner has a head or knows there is none: otherwise the scan budget ran out.
    var isSettled: Bool { head != nil || exhausted }

    /// Where a next page starts in this partition: the head not given out, or the first record not looked at.
    var resumeOffset: Int64 { head?.offset ?? position }

    mutating func takeHead() -> StoredRecord {
        defer { head = nil }
        return head!
    }

    /// Looks for the next matching record unless it has one.
    mutating func findHead(in log: DurableLog, matching pattern: TopicPattern, budget: inout Int) throws(LogError) {
        guard head == nil, !exhausted else { return }
        while budget > 0 {
            if readIndex == readAhead.count {
                readAhead = try log.read(
                    partition: partition, from: position, maximumRecords: 256,
                    maximumBytes: Broker.replayReadAheadBytes)
                readIndex = 0
                guard !readAhead.isEmpty else {
                    exhausted = true
                    return
                }
            }
            let record = readAhead[readIndex]
            readIndex += 1
            position = record.offset + 1
            budget -= 1
            if pattern.text == "#" || EventEnvelope.topic(ofStored: record.bytes).map({ pattern.matches($0) }) ?? false
            {
                head = record
                return
            }
        }
    }
}
