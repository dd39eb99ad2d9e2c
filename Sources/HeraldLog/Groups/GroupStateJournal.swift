import HeraldCore

/// One commit's changes to a group's state (docs/storage.md, "Consumer groups"): what the journal appends
/// instead of writing the whole state again, so that a commit costs what changed, not what is pending.
struct GroupStateChanges: Equatable {
    enum Change: Equatable {
        /// The partition's read position moved.
        case next(partition: Int, Int64)
        /// The pending event at this offset was delivered (again), or its state was otherwise written.
        case pending(partition: Int, GroupSnapshot.Pending)
        /// The event at this offset is no longer pending: acknowledged, dead-lettered, or dropped.
        case settled(partition: Int, offset: Int64)
        case deadLettersFrom(Int64)
    }

    var changes: [Change] = []

    var isEmpty: Bool { changes.isEmpty }

    private enum Tag: UInt8 {
        case next = 1
        case pending = 2
        case settled = 3
        case deadLettersFrom = 4
    }

    /// Little-endian: a tag byte, then the partition as 4 bytes where there is one, then 8-byte integers.
    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(changes.count * 29)
        for change in changes {
            switch change {
            case .next(let partition, let next):
                bytes.append(Tag.next.rawValue)
                bytes.appendLittleEndian(UInt32(partition))
                bytes.appendLittleEndian(next)
            case .pending(let partition, let pending):
                bytes.append(Tag.pending.rawValue)
                bytes.appendLittleEndian(UInt32(partition))
                bytes.appendLittleEndian(pending.offset)
                bytes.appendLittleEndian(Int64(pending.attempts))
                bytes.appendLittleEndian(pending.timestamp)
            case .settled(let partition, let offset):
                bytes.append(Tag.settled.rawValue)
                bytes.appendLittleEndian(UInt32(partition))
                bytes.appendLittleEndian(offset)
            case .deadLettersFrom(let offset):
                bytes.append(Tag.deadLettersFrom.rawValue)
                bytes.appendLittleEndian(offset)
            }
        }
        return bytes
    }

    /// The changes `bytes` hold, or `nil` when they are not ones ``encoded()`` wrote.
    init?(decoding bytes: ArraySlice<UInt8>) {
        var index = bytes.startIndex
        func read<Integer: FixedWidthInteger>(_: Integer.Type) -> Integer? {
            guard bytes.endIndex - index >= MemoryLayout<Integer>.size else { return nil }
            defer { index += MemoryLayout<Integer>.size }
            return bytes.littleEndian(Integer.self, at: index)
        }
        while index < bytes.endIndex {
            let tag = Tag(rawValue: bytes[index])
            index += 1
            switch tag {
            case .next:
                guard let partition = read(UInt32.self), let next = read(Int64.self) else { return nil }
                changes.append(.next(partition: Int(partition), next))
            case .pending:
                guard let partition = read(UInt32.self), let offset = read(Int64.self),
                    let attempts = read(Int64.self), let timestamp = read(Int64.self)
                else { return nil }
                changes.append(
                    .pending(
                        partition: Int(partition),
                        GroupSnapshot.Pending(offset: offset, attempts: Int(attempts), timestamp: timestamp)))
            case .settled:
                guard let partition = read(UInt32.self), let offset = read(Int64.self) else { return nil }
                changes.append(.settled(partition: Int(partition), offset: offset))
            case .deadLettersFrom:
                guard let offset = read(Int64.self) else { return nil }
                changes.append(.deadLettersFrom(offset))
            case nil:
                return nil
            }
        }
    }

    init(_ changes: [Change] = []) {
        self.changes = changes
    }
}

extension GroupSnapshot {
    /// The state after `records`, applied in order; `nil` when one names a partition the state does not have.
    func applying(_ records: [GroupStateChanges]) -> GroupSnapshot? {
        var positions = partitions.map { position in
            (next: position.next, pending: Dictionary(uniqueKeysWithValues: position.pending.map { ($0.offset, $0) }))
        }
        var deadLettersFrom = self.deadLettersFrom
        for record in records {
            for change in record.changes {
                switch change {
                case .next(let partition, let next):
                    guard positions.indices.contains(partition) else { return nil }
                    positions[partition].next = next
                case .pending(let partition, let pending):
                    guard positions.indices.contains(partition) else { return nil }
                    positions[partition].pending[pending.offset] = pending
                case .settled(let partition, let offset):
                    guard positions.indices.contains(partition) else { return nil }
                    positions[partition].pending[offset] = nil
                case .deadLettersFrom(let offset):
                    deadLettersFrom = offset
                }
            }
        }
        var applied = self
        applied.partitions = positions.map {
            Position(next: $0.next, pending: $0.pending.values.sorted { $0.offset < $1.offset })
        }
        applied.deadLettersFrom = deadLettersFrom
        return applied
    }
}

/// `<group directory>/journal.<generation>`: the changes made since the state file of that generation was
/// written, one record per commit — the payload's length (4 bytes, little-endian), its CRC-32C (4 bytes),
/// the payload (``GroupStateChanges/encoded()``). A record is appended and synced before the acks it holds
/// are answered; a torn or damaged record ends the journal (it was never answered).
struct GroupStateJournal {
    static let prefix = "journal."

    static func path(in directory: String, generation: Int64) -> String {
        directory + "/" + prefix + String(generation)
    }

    /// The records of the journal at `path`, up to a torn end; none if there is no file.
    ///
    /// Only the end can be torn: a record is appended and synced before the next is written. So a record
    /// that is cut short, or fails its checksum with no intact record after it, ends the journal (it was
    /// never answered). A damaged record followed by an intact one, or one whose checksum holds but whose
    /// changes this version cannot read, is refused naming the file: dropping the records after it would
    /// deliver again events whose acks were confirmed.
    static func read(_ path: String) throws(LogError) -> [GroupStateChanges] {
        guard LogFile.exists(path) else { return [] }
        let file = try LogFile(path: path, create: false)
        var bytes: [UInt8] = []
        try file.read(into: &bytes, count: try file.size(), at: 0)
        var records: [GroupStateChanges] = []
        var index = 0
        while let payload = Self.payload(in: bytes, at: index) {
            guard Self.checksumHolds(bytes, payload) else {
                if Self.intactRecord(in: bytes, after: payload.upperBound) {
                    throw .incompatible(
                        "\(path): the record at byte \(index) is damaged and intact ones follow it; move the file "
                            + "away to start from the group's state without it (its acks' events are delivered again)")
                }
                break
            }
            guard let record = GroupStateChanges(decoding: bytes[payload]) else {
                throw .incompatible("\(path): the record at byte \(index) holds changes this version does not read")
            }
            records.append(record)
            index = payload.upperBound
        }
        return records
    }

    /// The payload of the record at `index`, when its header and its whole length are there.
    private static func payload(in bytes: [UInt8], at index: Int) -> Range<Int>? {
        guard bytes.count - index >= 8 else { return nil }
        let length = Int(bytes.littleEndian(UInt32.self, at: index))
        guard length > 0, length <= bytes.count - index - 8 else { return nil }
        return index + 8..<index + 8 + length
    }

    private static func checksumHolds(_ bytes: [UInt8], _ payload: Range<Int>) -> Bool {
        let checksum = bytes.littleEndian(UInt32.self, at: payload.lowerBound - 4)
        return bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[payload])) } == checksum
    }

    /// Whether a whole record with a holding checksum starts at `index`.
    private static func intactRecord(in bytes: [UInt8], after index: Int) -> Bool {
        guard let payload = Self.payload(in: bytes, at: index) else { return false }
        return Self.checksumHolds(bytes, payload)
    }

    /// `changes` as one record.
    static func record(_ changes: GroupStateChanges) -> [UInt8] {
        let payload = changes.encoded()
        let checksum = payload.withUnsafeBytes { CRC32C.checksum($0) }
        var record: [UInt8] = []
        record.reserveCapacity(8 + payload.count)
        record.appendLittleEndian(UInt32(payload.count))
        record.appendLittleEndian(checksum)
        record.append(contentsOf: payload)
        return record
    }
}

/// Writes a group's state: appends each commit's changes to the journal, and now and then (at open, when
/// the journal has grown past twice the state file, after a failed write) the whole state to a new state
/// file of the next generation, which starts an empty journal. Used by one thread at a time.
struct GroupStateWriter {
    let file: GroupStateFile
    /// The generation of the state file on disk; the journal appended to is the one of this generation.
    private(set) var generation: Int64 = 0
    private var journal: LogFile?
    private var journalSize = 0
    private var stateSize = 0
    /// The next write must be a whole state: the journal may lack changes (a write failed) or there is
    /// none yet.
    private(set) var needsState = true

    init(file: GroupStateFile, generation: Int64) {
        self.file = file
        self.generation = generation
    }

    /// Below this size a journal is not folded into a new state file, however small the state.
    var smallestCompaction = 1 << 20
    /// Runs before each whole-state write (for tests: to hold one while something else is looked at).
    var beforeStateWrite: (@Sendable () -> Void)?
    /// Set when the group is deleted: its files are going, and nothing is written any more (a write would
    /// make its directory again).
    private(set) var retired = false

    /// Writes nothing from now on, and closes the journal.
    mutating func retire() {
        retired = true
        journal = nil
    }

    /// Whether the next commit should write the whole state rather than append to the journal: the journal
    /// has grown past twice the state file. So reading it at start costs at most that much more, and the
    /// whole-state writes add, on average, at most half the bytes the journal takes.
    var wantsState: Bool {
        needsState || journalSize > max(smallestCompaction, 2 * stateSize)
    }

    /// Writes `snapshot` as the state file of the next generation, and deletes the older journals.
    mutating func writeState(_ snapshot: GroupSnapshot) throws(LogError) {
        guard !retired else { return }
        beforeStateWrite?()
        needsState = true
        var snapshot = snapshot
        snapshot.format = 2
        snapshot.journal = generation + 1
        // A journal of that generation left from elsewhere (a state file restored from a copy) must not be
        // read over the new state.
        try LogFile.makeDirectory(file.directory)
        try LogFile.remove(GroupStateJournal.path(in: file.directory, generation: generation + 1))
        stateSize = try file.write(snapshot)
        generation += 1
        journal = nil
        journalSize = 0
        needsState = false
        // The state is durable: deleting what it replaced may fail without failing it (a later write retries).
        let names = (try? LogFile.names(in: file.directory)) ?? []
        for name in names where name.hasPrefix(GroupStateJournal.prefix) {
            if name != GroupStateJournal.prefix + String(generation) {
                try? LogFile.remove(file.directory + "/" + name)
            }
        }
    }

    /// Appends `changes` to the journal and syncs it. After a failure, the next write is a whole state.
    mutating func append(_ changes: GroupStateChanges) throws(LogError) {
        guard !retired else { return }
        guard !needsState else { preconditionFailure("the journal follows a state file written by this writer") }
        needsState = true
        let journal: LogFile
        if let open = self.journal {
            journal = open
        } else {
            journal = try LogFile(
                path: GroupStateJournal.path(in: file.directory, generation: generation), create: true)
            try journal.truncate(to: 0)
            try LogFile.syncDirectory(file.directory)
            self.journal = journal
        }
        let record = GroupStateJournal.record(changes)
        try journal.write(record, at: journalSize)
        try journal.sync()
        journalSize += record.count
        needsState = false
    }
}
