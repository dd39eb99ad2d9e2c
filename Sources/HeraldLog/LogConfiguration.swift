/// How the durable log is laid out and kept.
public struct LogConfiguration: Sendable, Equatable {
    /// When an appended record is made durable (PROTOCOL.md §4.4).
    public enum FsyncPolicy: String, Sendable, Equatable {
        /// Each record is synced on its own before its publisher hears `ok`.
        case always
        /// Group commit: one sync covers every record written since the last (the default).
        case batch
        /// Never synced by the log (the kernel writes it back); `ok` once written.
        case never
    }

    /// The log's directory (`<data dir>/log`).
    public var directory: String
    /// The number of partitions; fixed once the log exists.
    public var partitions: Int
    public var fsync: FsyncPolicy
    /// A segment is sealed and a new one started when the next record would take it past this size.
    public var segmentBytes: Int
    /// An offset and time index entry is kept every this many bytes of records.
    public var indexIntervalBytes: Int
    /// Sealed segments whose newest record is older than this are deleted; `nil`: kept whatever their age.
    public var retentionMilliseconds: Int64?
    /// The oldest sealed segments of a partition are deleted while it is larger than this; `nil`: no limit.
    public var retentionBytesPerPartition: Int?
    /// The size of the journal file of the `batch` policy (docs/storage.md, "The journal"): when a round's
    /// records do not fit in what is left of it, every partition is synced and it starts over.
    public var journalBytes: Int
    /// How long the writer may wait, once woken by appends nobody waits for, before it writes them, so that
    /// one round (one write and one sync) covers them all (docs/storage.md, "Lingering"). An append
    /// someone waits for — a confirmed publish, a flush, a reader caught up with the partition, a close —
    /// ends the wait at once. 0: every round starts as soon as it is woken.
    public var lingerMilliseconds: Int

    public init(
        directory: String,
        partitions: Int = 8,
        fsync: FsyncPolicy = .batch,
        segmentBytes: Int = 64 << 20,
        indexIntervalBytes: Int = 4096,
        retentionMilliseconds: Int64? = nil,
        retentionBytesPerPartition: Int? = nil,
        journalBytes: Int = 16 << 20,
        lingerMilliseconds: Int = 0
    ) {
        self.directory = directory
        self.partitions = partitions
        self.fsync = fsync
        self.segmentBytes = segmentBytes
        self.indexIntervalBytes = indexIntervalBytes
        self.retentionMilliseconds = retentionMilliseconds
        self.retentionBytesPerPartition = retentionBytesPerPartition
        self.journalBytes = journalBytes
        self.lingerMilliseconds = lingerMilliseconds
    }
}

/// What opening the log found and repaired.
public struct RecoveryReport: Sendable, Equatable {
    /// A file cut short at the first torn or corrupt record.
    public struct Truncation: Sendable, Equatable {
        public let file: String
        /// The size it was cut to: the end of its last whole record.
        public let position: Int
        public let bytesRemoved: Int
        public let reason: String
    }

    /// Records in the log (offsets from each partition's first retained to its next).
    public var records = 0
    /// Sealed segments opened from their index files without reading them.
    public var segmentsTrusted = 0
    /// Segments read record by record (always the active one of each partition).
    public var segmentsScanned = 0
    public var recordsScanned = 0
    /// Sealed segments whose index files were missing or stale, rebuilt by the scan.
    public var indexesRebuilt = 0
    public var truncations: [Truncation] = []
    /// Records found damaged in the middle of a sealed segment (a flipped bit, a bad sector): unreadable,
    /// and kept with the records around them, which are read as before. A sealed segment was whole when
    /// it was sealed, so damage there is not a torn tail to cut.
    public struct DamagedRecords: Sendable, Equatable {
        public let file: String
        /// Where the first damaged record starts in the file.
        public let position: Int
        /// The offsets that cannot be read.
        public let offsets: Range<Int64>
        public let reason: String
    }
    public var damagedRecords: [DamagedRecords] = []
    /// Offsets between two segments that neither holds: a segment file is gone. Acknowledged events are lost.
    public struct MissingRecords: Sendable, Equatable {
        /// The partition's directory.
        public let directory: String
        public let offsets: Range<Int64>
    }
    public var missingRecords: [MissingRecords] = []
    /// Records the segments had lost (unsynced when the machine stopped) and the journal gave back.
    public var recordsReplayed = 0
    /// Where a partition's records were missing beyond what the journal held (the first offset missing):
    /// damage a journal should never leave; nothing after it was replayed.
    public var replayGaps: [LogPosition] = []
    /// Records known synced (``SyncedEnds``) that a partition no longer has: `offsets` were lost, with no
    /// damage recovery could see (a segment cut at a record's end). Acknowledged events are gone.
    public struct LostRecords: Sendable, Equatable {
        public let partition: Int
        public let offsets: Range<Int64>
    }
    public var recordsLost: [LostRecords] = []
    /// Journal files not replayed, and why (written by another log, a header that is not whole).
    public var journalProblems: [String] = []
    /// How long opening took.
    public var duration: Duration = .zero

    public init() {}
}
