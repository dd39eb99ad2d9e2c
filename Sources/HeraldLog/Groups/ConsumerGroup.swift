import Dispatch
import HeraldCore
import Synchronization

/// A consumer group (PROTOCOL.md §4.2): reads the events of its topics from the durable log and hands each
/// to one of its members, at least once.
///
/// Per partition the group keeps a read position (`next`) and the events delivered and not yet
/// acknowledged (`pending`). The partitions are spread over the members in join order (partition `p` to
/// member `p mod n`) and spread again whenever one joins or leaves. A member takes events from its
/// partitions — due redeliveries first, then new events in offset order — up to its `max_in_flight`. An
/// event not acknowledged within the member's `ack_wait_ms`, `nack`ed, or held by a member that leaves is
/// a failed attempt: it is delivered again after the backoff (at once for a departed member), to whoever
/// owns its partition then, or goes to the dead-letter queue once `max_deliver` attempts are spent. The
/// committed offset of a partition is its first pending offset, or `next` when nothing is pending.
///
/// All of it is one small state machine under one lock; log reads for a member happen under it too (they
/// are positioned reads, mostly from the page cache). Members are woken — never called with the lock held
/// — when their partitions get new durable events, when acknowledgements free room, when a redelivery falls
/// due and when partitions move.
public final class ConsumerGroup: Sendable {
    public let name: String
    /// The group's topic patterns, as the first subscriber gave them.
    public let topics: [TopicPattern]
    public let settings: GroupSettings
    /// ``GroupSettings/maxDeliver`` for this group.
    private let maxDeliver: Int
    let deadLetters: DeadLetterQueue
    private let matchesEverything: Bool
    private let log: DurableLog
    let writer: StateLock<GroupStateWriter>
    /// Set while a whole-state write runs on a thread of its own (``commit(closing:)``); left when it ends.
    private let compacting = StateLock<DispatchGroup?>(nil)
    private let clock: GroupClock
    private let state: StateLock<State>
    /// Tells the registry's committer that the state changed.
    private let changed: @Sendable () -> Void

    struct Holder: Equatable {
        var member: UInt64
        var seq: UInt64
    }

    struct Pending {
        /// Deliveries made so far.
        var attempts: Int
        /// When the event was accepted, milliseconds since 1970.
        var timestamp: Int64
        /// The member and seq it is in flight with; `nil` while it waits for a redelivery.
        var holder: Holder?
        /// Monotonic milliseconds: the ack deadline while held, the time it falls due while waiting.
        var deadline: Int64 = 0
        /// On its way to the dead-letter queue.
        var deadLettering = false
    }

    /// A partition's pending events by offset, noting which offsets changed since the committer last took
    /// them (``takeTouched()``): a commit writes those, not every pending event.
    struct PendingTable: Sequence {
        private(set) var entries: [Int64: Pending] = [:]
        private var touched: Set<Int64> = []

        subscript(offset: Int64) -> Pending? {
            get { entries[offset] }
            set {
                entries[offset] = newValue
                touched.insert(offset)
            }
        }

        @discardableResult
        mutating func removeValue(forKey offset: Int64) -> Pending? {
            touched.insert(offset)
            return entries.removeValue(forKey: offset)
        }

        var keys: Dictionary<Int64, Pending>.Keys { entries.keys }
        var count: Int { entries.count }
        func makeIterator() -> Dictionary<Int64, Pending>.Iterator { entries.makeIterator() }

        /// The offsets changed since the last call.
        mutating func takeTouched() -> Set<Int64> {
            defer { touched = [] }
            return touched
        }
    }

    struct Cursor {
        var next: Int64 {
            didSet { nextMoved = true }
        }
        /// `next` moved since the committer last looked.
        var nextMoved = false
        var pending = PendingTable()
        /// Pending offsets waiting for a redelivery (no holder, not dead-lettering).
        var due: Set<Int64> = []
        /// Where a partition no member owns stopped moving: the offset of the group's own event found there
        /// (``ConsumerGroup/skipOthers(_:_:)`` reads nothing more until `next` moves on).
        var ownEventAt: Int64?

        var committed: Int64 { pending.keys.min() ?? next }

        /// The offsets waiting for a redelivery that are due at `now`, in order. (A method, not code that
        /// binds a copy of the cursor: a copy alive while the group changes its tables would make each change
        /// copy them whole.)
        func dueOffsets(at now: Int64) -> [Int64] {
            due.filter { pending[$0]!.deadline <= now }.sorted()
        }
    }

    struct Member {
        let handle: GroupMember
        let maxInFlight: Int
        let ackWaitMs: Int64
        /// The module whose subscription it is (`subscribers`, PROTOCOL.md §2.2); `nil` for the broker's own.
        let module: String?
        var nextSeq: UInt64 = 1
        var inFlight: [UInt64: (partition: Int, offset: Int64)] = [:]
        var partitions: [Int] = []
        /// Where the next take starts among `partitions`, so that no partition starves the others.
        var rotation = 0
        /// Its last take found nothing: it is woken when that may change.
        var waiting = false
    }

    struct State {
        var cursors: [Cursor]
        /// The first dead letter not yet replayed or purged.
        var deadLettersFrom: Int64 = 0 {
            didSet { deadLettersMoved = true }
        }
        /// `deadLettersFrom` moved since the committer last looked.
        var deadLettersMoved = false
        var members: [UInt64: Member] = [:]
        var owners: [UInt64?]
        var nextMemberID: UInt64 = 1
        /// When the deadline timer fires next.
        var timerAt: Int64?
        /// No event in flight has an ack deadline before this (exact after `expire` looked at them all;
        /// acks since may have taken the event that had it). Until it passes, `expire` looks only at the
        /// events waiting for a redelivery.
        var heldDeadlineFloor = Int64.max
        /// Counts changes the state file shows; the committer writes when it is ahead of `committedVersion`.
        var version: UInt64 = 0
        var committedVersion: UInt64 = 0
        var commitWaiters: [(version: UInt64, callback: @Sendable (Result<Void, LogError>) -> Void)] = []
        /// Deleted (``retire()``): nothing is committed any more.
        var retired = false
    }

    /// An event to move to the dead-letter queue, outside the lock.
    private struct DeadLetter {
        let partition: Int
        let offset: Int64
        let attempts: Int
        let reason: String
    }

    /// What a change asks for once the lock is released.
    private struct Effects {
        var wake: [GroupMember] = []
        var deadLetters: [DeadLetter] = []
        var arm: Int64?
        var changed = false
    }

    init(
        name: String, topics: [TopicPattern], settings: GroupSettings, log: DurableLog, directory: String,
        clock: GroupClock, snapshot: GroupSnapshot?, start: GroupStart, changed: @escaping @Sendable () -> Void
    ) throws(LogError) {
        self.name = name
        self.topics = topics
        self.settings = settings
        maxDeliver = settings.maxDeliver(forGroup: name)
        self.log = log
        self.writer = StateLock(
            GroupStateWriter(file: GroupStateFile(directory: directory), generation: snapshot?.journal ?? 0))
        self.clock = clock
        self.changed = changed
        self.matchesEverything = topics.contains { $0.text == "#" }
        self.deadLetters = try DeadLetterQueue(directory: directory + "/dead-letters")
        var cursors: [Cursor] = []
        for partition in 0..<log.partitionCount {
            if let snapshot, partition < snapshot.partitions.count {
                let position = snapshot.partitions[partition]
                // A log that lost records the group had read (fsync `never` and an operating-system crash,
                // damage; recovery reports them) gives their offsets to the next events: the group goes back
                // to its end, so that those are delivered, and forgets what it held past it (those events are
                // gone). Otherwise the end is never before what the group read.
                let end = log.bounds(partition: partition).end
                var cursor = Cursor(next: min(position.next, end))
                for entry in position.pending where entry.offset < end {
                    // Delivered before the restart and not acknowledged: due again at once.
                    cursor.pending[entry.offset] = Pending(attempts: entry.attempts, timestamp: entry.timestamp)
                    cursor.due.insert(entry.offset)
                }
                cursors.append(cursor)
                continue
            }
            let bounds = log.bounds(partition: partition)
            let next: Int64 =
                switch start {
                case .latest: bounds.end
                case .earliest: bounds.start
                // Past the end: the end, so that no event stored later is passed over unseen (as `latest`).
                case .offset(let offset): min(offset, bounds.end)
                case .time(let time): try log.offset(partition: partition, atOrAfter: time)
                }
            cursors.append(Cursor(next: next))
        }
        var initial = State(cursors: cursors, owners: Array(repeating: nil, count: cursors.count))
        initial.deadLettersFrom = snapshot?.deadLettersFrom ?? 0
        state = StateLock(initial)
        // The state on disk says these are replayed or purged: their space is given back (also when the
        // broker stopped between writing that state and deleting them). Failing leaves it to a later purge.
        _ = try? deadLetters.discard(before: initial.deadLettersFrom)
        // A new group's state is on disk before it is used. A loaded one's starts a new generation, which
        // folds in its journal and leaves any torn record at the journal's end behind; if that write fails
        // (a full disk), the group still opens from what it read, and its first commit writes the whole state.
        let current = self.snapshot(of: takeState().taken)
        do throws(LogError) {
            try writer.withLock { (writer: inout GroupStateWriter) throws(LogError) in try writer.writeState(current) }
        } catch {
            if snapshot == nil { throw error }
        }
    }

    // MARK: Members

    /// The modules with a member in the group, sorted.
    public var memberModules: [String] {
        state.withLock { state in Set(state.members.values.compactMap(\.module)).sorted() }
    }

    /// Adds a member for `subscription`; the partitions are spread again.
    public func join(subscription: UInt64, maxInFlight: Int?, ackWaitMs: Int64?, module: String? = nil) -> GroupMember {
        let (member, effects) = state.withLock { state in
            let id = state.nextMemberID
            state.nextMemberID += 1
            let handle = GroupMember(id: id, subscription: subscription)
            state.members[id] = Member(
                handle: handle, maxInFlight: maxInFlight ?? settings.maxInFlight,
                ackWaitMs: ackWaitMs ?? settings.ackWaitMs, module: module)
            var effects = Effects()
            rebalance(&state, &effects)
            return (handle, effects)
        }
        apply(effects)
        return member
    }

    /// Removes a member: what it holds unacknowledged is delivered again at once to the partitions' owners
    /// (a failed attempt: one that was the last allowed goes to the dead-letter queue).
    public func leave(_ member: GroupMember) {
        let now = clock.monotonic()
        let effects = state.withLock { state in
            var effects = Effects()
            guard let gone = state.members.removeValue(forKey: member.id) else { return effects }
            for (seq, place) in gone.inFlight
            where state.cursors[place.partition].pending[place.offset]?.holder == Holder(member: member.id, seq: seq) {
                fail(&state, place.partition, place.offset, now: now, delay: 0, deadLetter: nil, &effects)
            }
            rebalance(&state, &effects)
            return effects
        }
        apply(effects)
    }

    /// The number of members.
    public var memberCount: Int { state.withLock { $0.members.count } }

    /// Partition `p` to member `p mod n`, members in join order; every waiting member is woken, since it may
    /// have gained partitions or due redeliveries.
    private func rebalance(_ state: inout State, _ effects: inout Effects) {
        let ids = state.members.keys.sorted()
        var assigned: [UInt64: [Int]] = [:]
        for partition in state.owners.indices {
            let owner = ids.isEmpty ? nil : ids[partition % ids.count]
            state.owners[partition] = owner
            if let owner { assigned[owner, default: []].append(partition) }
        }
        for id in ids {
            state.members[id]!.partitions = assigned[id] ?? []
            state.members[id]!.rotation = 0
            if state.members[id]!.waiting {
                state.members[id]!.waiting = false
                effects.wake.append(state.members[id]!.handle)
            }
        }
    }

    // MARK: Delivering

    /// What one take may hand out: events, and bytes (always at least one event).
    struct Budget {
        var events: Int
        var bytes: Int

        var isSpent: Bool { events <= 0 || bytes <= 0 }

        mutating func spend(_ delivery: GroupDelivery) {
            events -= 1
            bytes -= delivery.bytes.count
        }
    }

    /// Takes up to `maximum` events (and about `maximumBytes`) for `member` from its partitions: due
    /// redeliveries first (oldest offset first), then new events in offset order, within its
    /// `max_in_flight`. An empty result means nothing is ready; the member is woken when that changes.
    public func take(_ member: GroupMember, maximum: Int, maximumBytes: Int = 256 << 10) throws(LogError)
        -> [GroupDelivery]
    {
        let now = clock.monotonic()
        var deliveries: [GroupDelivery] = []
        var failure: LogError?
        var effects = Effects()
        state.withLock { state in
            let versionBefore = state.version
            // What moved without a delivery (the read position past other topics, an event retention deleted)
            // is written now too, not only with the next change.
            defer { if state.version != versionBefore { effects.changed = true } }
            // Only what is needed is read: a copy of the `Member` would share its `inFlight` table, and the
            // first delivery below would then copy the whole table (every event in flight) to add to it.
            guard
                let found = state.members[member.id].map({ member in
                    (
                        room: member.maxInFlight - member.inFlight.count, partitions: member.partitions,
                        rotation: member.rotation, ackWaitMs: member.ackWaitMs
                    )
                })
            else { return }
            let room = found.room
            var capacity = Budget(events: min(maximum, room), bytes: maximumBytes)
            let partitions = found.partitions
            // Events of its partitions that wait for a redelivery are still unacknowledged: they keep their
            // places in its `max_in_flight` (PROTOCOL.md §4.2), and new events take only what they leave. The
            // room beyond this take (`maximum` may be less than it) holds as many of them as it can.
            let roomBeyond = max(0, room - capacity.events)
            var waiting = partitions.reduce(0) { $0 + state.cursors[$1].due.count }
            let before = deliveries.count
            var scanLeft = Self.scanLimit
            for index in partitions.indices where !capacity.isSpent && failure == nil {
                let partition = partitions[(found.rotation + index) % partitions.count]
                do throws(LogError) {
                    let due = state.cursors[partition].due.count
                    try redeliver(
                        &state, partition, to: member.id, now: now, capacity: &capacity, into: &deliveries, &effects)
                    waiting -= due - state.cursors[partition].due.count
                    try deliverNew(
                        &state, partition, to: member.id, now: now, capacity: &capacity,
                        reserving: max(0, waiting - roomBeyond), scanLeft: &scanLeft, into: &deliveries)
                } catch {
                    failure = error
                }
            }
            state.members[member.id]!.rotation &+= 1
            if scanLeft <= 0 && deliveries.count == before {
                // Stopped in a run of events that are not the group's, with more to look at: not waiting for
                // new events — the member is woken to take again, on a later turn of its loop.
                state.members[member.id]!.waiting = false
                effects.wake.append(member)
            } else {
                state.members[member.id]!.waiting = deliveries.count == before
                // Nothing left to take: the next event of its partitions is written without the log's
                // linger, and it is woken for it at once.
                if deliveries.count == before, !capacity.isSpent {
                    for partition in partitions { log.readerWaits(partition: partition) }
                }
            }
            if deliveries.count > before {
                effects.changed = true
                let deadline = now + found.ackWaitMs
                if state.timerAt.map({ deadline < $0 }) ?? true {
                    state.timerAt = deadline
                    effects.arm = deadline
                }
            }
        }
        apply(effects)
        if let failure, deliveries.isEmpty { throw failure }
        return deliveries
    }

    private func redeliver(
        _ state: inout State, _ partition: Int, to member: UInt64, now: Int64, capacity: inout Budget,
        into deliveries: inout [GroupDelivery], _ effects: inout Effects
    ) throws(LogError) {
        guard !state.cursors[partition].due.isEmpty else { return }
        let ready = state.cursors[partition].dueOffsets(at: now)
        for offset in ready where !capacity.isSpent {
            // Out of attempts: its last one was in flight when the broker stopped (a restart makes every
            // pending event due at once, its attempts counted), or `max_deliver` was lowered since. It goes to
            // the dead-letter queue, as after any failed last attempt, not to a consumer once more.
            if state.cursors[partition].pending[offset]!.attempts >= maxDeliver {
                state.cursors[partition].due.remove(offset)
                fail(&state, partition, offset, now: now, delay: nil, deadLetter: nil, &effects)
                continue
            }
            // Read before it leaves `due`: a read that fails leaves it waiting, to be tried again.
            let read = try log.read(partition: partition, from: offset, maximumRecords: 1).first
            state.cursors[partition].due.remove(offset)
            guard let record = read, record.offset == offset else {
                // Deleted by retention before it could be delivered again.
                state.cursors[partition].pending.removeValue(forKey: offset)
                state.version += 1
                continue
            }
            deliveries.append(hand(&state, record, to: member, now: now))
            capacity.spend(deliveries.last!)
        }
    }

    /// The most records one take reads past: events that are not the group's cost no capacity, and a take
    /// that found ten million of them in a row would hold the group's lock (and the log's writer, which
    /// tells the group of new events under it) for the whole scan.
    static let scanLimit = 4096

    /// Hands out new events of `partition` while `capacity` lasts beyond the `reserving` places kept for
    /// redeliveries, reading past at most `scanLeft` more records.
    private func deliverNew(
        _ state: inout State, _ partition: Int, to member: UInt64, now: Int64, capacity: inout Budget,
        reserving: Int, scanLeft: inout Int, into deliveries: inout [GroupDelivery]
    ) throws(LogError) {
        while !capacity.isSpent, capacity.events > reserving, scanLeft > 0 {
            let records = try log.read(
                partition: partition, from: state.cursors[partition].next,
                maximumRecords: min(capacity.events - reserving, 512, scanLeft), maximumBytes: capacity.bytes)
            guard !records.isEmpty else { return }
            scanLeft -= records.count
            for record in records {
                state.cursors[partition].next = record.offset + 1
                guard matches(record.bytes) else { continue }
                state.cursors[partition].pending[record.offset] = Pending(attempts: 0, timestamp: record.timestamp)
                deliveries.append(hand(&state, record, to: member, now: now))
                capacity.spend(deliveries.last!)
            }
            state.version += 1
        }
    }

    /// Records a delivery of `record` to `member`.
    private func hand(_ state: inout State, _ record: StoredRecord, to member: UInt64, now: Int64) -> GroupDelivery {
        let seq = state.members[member]!.nextSeq
        state.members[member]!.nextSeq += 1
        state.members[member]!.inFlight[seq] = (record.partition, record.offset)
        var pending = state.cursors[record.partition].pending[record.offset]!
        pending.attempts += 1
        pending.holder = Holder(member: member, seq: seq)
        pending.deadline = now + state.members[member]!.ackWaitMs
        state.cursors[record.partition].pending[record.offset] = pending
        state.heldDeadlineFloor = min(state.heldDeadlineFloor, pending.deadline)
        state.version += 1
        return GroupDelivery(
            seq: seq, attempt: pending.attempts, partition: record.partition, offset: record.offset,
            timestamp: record.timestamp, bytes: record.bytes)
    }

    private func matches(_ bytes: [UInt8]) -> Bool {
        if matchesEverything { return true }
        guard let topic = EventEnvelope.topic(ofStored: bytes) else { return false }
        return topics.contains { $0.matches(topic) }
    }

    /// The log made new events of `partition` readable: its owner is woken if it waits. A partition no
    /// member owns moves its read position past the events that are not the group's (as a member's take
    /// would), so that they do not count as lag while the group has no member.
    func readable(partition: Int) {
        var changed = false
        let member = state.withLock { state -> GroupMember? in
            guard partition < state.owners.count else { return nil }
            guard let owner = state.owners[partition] else {
                changed = skipOthers(&state, partition)
                return nil
            }
            guard state.members[owner]?.waiting == true else { return nil }
            state.members[owner]!.waiting = false
            return state.members[owner]!.handle
        }
        member?.wake()
        if changed { self.changed() }
    }

    /// Moves `partition`'s read position past the events after it that the group's topics do not match,
    /// up to the first that they do (at most 4096 a call: the log's writer thread calls this). Returns
    /// whether it moved.
    private func skipOthers(_ state: inout State, _ partition: Int) -> Bool {
        guard !matchesEverything, state.cursors[partition].ownEventAt != state.cursors[partition].next else {
            return false
        }
        let start = state.cursors[partition].next
        var scanned = 0
        while scanned < 4096 {
            guard
                let records = try? log.read(
                    partition: partition, from: state.cursors[partition].next, maximumRecords: 256),
                !records.isEmpty
            else { break }
            for record in records {
                guard !matches(record.bytes) else {
                    state.cursors[partition].ownEventAt = record.offset
                    return finishSkip(&state, partition, from: start)
                }
                state.cursors[partition].next = record.offset + 1
            }
            scanned += records.count
        }
        return finishSkip(&state, partition, from: start)
    }

    private func finishSkip(_ state: inout State, _ partition: Int, from start: Int64) -> Bool {
        guard state.cursors[partition].next != start else { return false }
        state.version += 1
        return true
    }

    // MARK: Acknowledging

    /// The outcome of an `ack` or `nack`.
    public struct Answer: Sendable {
        /// The state version that records it: ``whenCommitted(_:_:)`` says when it is on disk.
        public let version: UInt64
        /// Seqs never delivered on the subscription.
        public let unknown: [UInt64]
    }

    /// Acknowledges deliveries: each is done. A seq whose delivery already timed out or was acknowledged is
    /// ignored; when any seq was never delivered on the subscription, nothing is acknowledged and those are
    /// reported in ``Answer/unknown``.
    public func ack(_ member: GroupMember, seqs: [UInt64]) -> Answer {
        var effects = Effects()
        let answer = state.withLock { state in
            // Only `nextSeq` is read: a copy of the `Member` would share its `inFlight` table, and removing from
            // it below would then copy the whole table (every event in flight) on every ack.
            guard let nextSeq = state.members[member.id]?.nextSeq else {
                return Answer(version: state.version, unknown: [])
            }
            // Checked first: an ack naming a seq never delivered changes nothing.
            let unknown = seqs.filter { $0 == 0 || $0 >= nextSeq }
            guard unknown.isEmpty else { return Answer(version: state.version, unknown: unknown) }
            for seq in seqs {
                guard let place = state.members[member.id]!.inFlight.removeValue(forKey: seq) else { continue }
                guard
                    state.cursors[place.partition].pending[place.offset]?.holder == Holder(member: member.id, seq: seq)
                else { continue }
                state.cursors[place.partition].pending.removeValue(forKey: place.offset)
                state.version += 1
                effects.changed = true
            }
            if effects.changed, state.members[member.id]!.waiting {
                state.members[member.id]!.waiting = false
                effects.wake.append(member)
            }
            return Answer(version: state.version, unknown: [])
        }
        apply(effects)
        return answer
    }

    /// Refuses one delivery: it is delivered again after `delayMs` (else the backoff), or goes to the
    /// dead-letter queue with `deadLetter`, or when it was the last attempt `max_deliver` allows.
    /// `reason` is the dead letter's `dead_letter_reason` with `deadLetter` (`"nack"` unless given).
    public func nack(
        _ member: GroupMember, seq: UInt64, delayMs: Int64?, deadLetter: Bool, reason: String = "nack"
    ) -> Answer {
        let now = clock.monotonic()
        var effects = Effects()
        let answer = state.withLock { state in
            guard state.members[member.id] != nil else { return Answer(version: state.version, unknown: []) }
            guard let place = state.members[member.id]!.inFlight.removeValue(forKey: seq) else {
                let unknown = seq == 0 || seq >= state.members[member.id]!.nextSeq
                return Answer(version: state.version, unknown: unknown ? [seq] : [])
            }
            if state.cursors[place.partition].pending[place.offset]?.holder == Holder(member: member.id, seq: seq) {
                fail(
                    &state, place.partition, place.offset, now: now, delay: delayMs,
                    deadLetter: deadLetter ? reason : nil, &effects)
            }
            if state.members[member.id]!.waiting {
                state.members[member.id]!.waiting = false
                effects.wake.append(member)
            }
            return Answer(version: state.version, unknown: [])
        }
        apply(effects)
        return answer
    }

    /// A failed attempt of the pending event at `offset`: it waits `delay` (else the backoff) for its next
    /// delivery, or goes to the dead-letter queue — out of attempts, or at once with `deadLetter` (its
    /// reason).
    private func fail(
        _ state: inout State, _ partition: Int, _ offset: Int64, now: Int64, delay: Int64?, deadLetter: String?,
        _ effects: inout Effects
    ) {
        var pending = state.cursors[partition].pending[offset]!
        pending.holder = nil
        state.version += 1
        effects.changed = true
        if deadLetter != nil || pending.attempts >= maxDeliver {
            let attempts = pending.attempts
            pending.deadLettering = true
            // On disk as out of attempts: the state written before the dead letter is durable (a `nack`'s
            // `ok` waits for it) then sends it to the queue at the next start, as it does an event whose last
            // attempt was in flight — not to a consumer again, after it said `dead_letter: true`.
            // (Not in a group without a limit, such as the RabbitMQ bridge's: there it is delivered again
            // after a restart, and its member decides again.)
            if maxDeliver != .max { pending.attempts = max(pending.attempts, maxDeliver) }
            state.cursors[partition].pending[offset] = pending
            effects.deadLetters.append(
                DeadLetter(
                    partition: partition, offset: offset, attempts: attempts, reason: deadLetter ?? "max_deliver"))
            return
        }
        pending.deadline = now + (delay ?? settings.backoff(afterAttempt: pending.attempts))
        state.cursors[partition].pending[offset] = pending
        state.cursors[partition].due.insert(offset)
        if pending.deadline <= now {
            if let owner = state.owners[partition], state.members[owner]?.waiting == true {
                state.members[owner]!.waiting = false
                effects.wake.append(state.members[owner]!.handle)
            }
        } else if state.timerAt.map({ pending.deadline < $0 }) ?? true {
            state.timerAt = pending.deadline
            effects.arm = pending.deadline
        }
    }

    // MARK: Deadlines

    /// Runs what is due at `now`: deliveries past their ack deadline fail; owners of redeliveries that fell
    /// due are woken; the timer is set for the next deadline. The events in flight are looked at only once
    /// the earliest ack deadline may have passed (``State/heldDeadlineFloor``): otherwise only those waiting
    /// for a redelivery are, so that nacks falling due one after another do not each cost a look at every
    /// pending event.
    func expire(now: Int64) {
        var effects = Effects()
        state.withLock { state in
            state.timerAt = nil
            var next: Int64?
            let lookAtHeld = now >= state.heldDeadlineFloor
            var floor = lookAtHeld ? Int64.max : state.heldDeadlineFloor
            for partition in state.cursors.indices {
                // Looked at first, changed after: iterating a table while changing it would keep a second
                // reference to it, and the first change would copy it whole.
                var expired: [(offset: Int64, holder: Holder)] = []
                var ownerDue = false
                if lookAtHeld {
                    for (offset, pending) in state.cursors[partition].pending where !pending.deadLettering {
                        if let holder = pending.holder {
                            if pending.deadline <= now {
                                expired.append((offset, holder))
                            } else {
                                floor = min(floor, pending.deadline)
                            }
                        } else if pending.deadline <= now {
                            ownerDue = true
                        } else {
                            next = min(next ?? pending.deadline, pending.deadline)
                        }
                    }
                } else {
                    for offset in state.cursors[partition].due {
                        let deadline = state.cursors[partition].pending[offset]!.deadline
                        if deadline <= now {
                            ownerDue = true
                        } else {
                            next = min(next ?? deadline, deadline)
                        }
                    }
                }
                for (offset, holder) in expired {
                    state.members[holder.member]?.inFlight.removeValue(forKey: holder.seq)
                    if let waiting = state.members[holder.member]?.waiting, waiting {
                        state.members[holder.member]!.waiting = false
                        effects.wake.append(state.members[holder.member]!.handle)
                    }
                    fail(&state, partition, offset, now: now, delay: nil, deadLetter: nil, &effects)
                    if let waiting = state.cursors[partition].pending[offset], !waiting.deadLettering,
                        waiting.deadline > now
                    {
                        next = min(next ?? waiting.deadline, waiting.deadline)
                    }
                }
                if ownerDue, let owner = state.owners[partition], state.members[owner]?.waiting == true {
                    state.members[owner]!.waiting = false
                    effects.wake.append(state.members[owner]!.handle)
                }
            }
            state.heldDeadlineFloor = floor
            if floor != .max { next = min(next ?? floor, floor) }
            state.timerAt = next
            effects.arm = next
        }
        apply(effects)
    }

    /// The deadline timer armed for `deadline` fired: `expire` runs unless a timer for an earlier deadline
    /// was armed since (that one ran, or will, and arms the next). So a group has one chain of timers; each
    /// earlier nack deadline added a chain that re-armed itself for as long as anything was held.
    private func timerFired(armedFor deadline: Int64) {
        guard state.withLock({ $0.timerAt == deadline }) else { return }
        expire(now: clock.monotonic())
    }

    /// Holds the group's state writer, as a long whole-state write does, until the returned closure is called
    /// (for tests): commits and deletions wait meanwhile.
    func holdStateWriter() async -> @Sendable () -> Void {
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { [self] in
            writer.withLock { _ in
                holding.signal()
                release.wait()
            }
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                holding.wait()
                continuation.resume()
            }
        }
        return { release.signal() }
    }

    /// The state's version, and whether the state file holds it (for tests).
    var stateVersion: (current: UInt64, committed: UInt64) {
        state.withLock { ($0.version, $0.committedVersion) }
    }

    /// Deadline timers scheduled and not yet fired (for tests: a group keeps about one).
    let armedTimers = Atomic<Int>(0)

    /// The granularity of the deadline timer, in milliseconds: a redelivery or an ack timeout is handled up
    /// to this much after its time.
    static let timerTick: Int64 = 10

    private func apply(_ effects: Effects) {
        for member in effects.wake { member.wake() }
        if !effects.deadLetters.isEmpty { sendToDeadLetters(effects.deadLetters) }
        if let arm = effects.arm {
            // Rounded up to a whole tick, so that deadlines within one tick share a run of `expire`, which
            // looks at every pending event: nacks a millisecond apart would otherwise run it every millisecond.
            let delay = (max(0, arm - clock.monotonic()) + Self.timerTick - 1) / Self.timerTick * Self.timerTick
            armedTimers.add(1, ordering: .relaxed)
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(min(delay, Int64(Int32.max))))) {
                [weak self] in
                guard let self else { return }
                self.armedTimers.subtract(1, ordering: .relaxed)
                self.timerFired(armedFor: arm)
            }
        }
        if effects.changed || !effects.deadLetters.isEmpty { changed() }
    }

    /// Appends each event, with the dead-letter metadata added, to the dead-letter queue; once that is
    /// durable the event is done in the group. One the queue cannot take stays pending, marked for the queue,
    /// and goes to it after a restart (its state says it is out of attempts; in a group without a limit it is
    /// delivered again).
    private func sendToDeadLetters(_ letters: [DeadLetter]) {
        for letter in letters {
            do throws(LogError) {
                guard
                    let record = try log.read(partition: letter.partition, from: letter.offset, maximumRecords: 1)
                        .first,
                    record.offset == letter.offset,
                    let envelope = try? EventEnvelope(json: record.bytes, form: .delivered)
                else {
                    finishDeadLetter(letter)
                    continue
                }
                var fields = envelope.fields
                fields.metadata["dead_letter_reason"] = letter.reason
                fields.metadata["attempts"] = String(letter.attempts)
                fields.metadata["original_offset"] = String(letter.offset)
                fields.metadata["original_partition"] = String(letter.partition)
                fields.metadata["group"] = name
                let bytes = EventEnvelope(sealing: fields).json
                try deadLetters.append(bytes, timestamp: clock.wall()) { [weak self] result in
                    switch result {
                    case .success: self?.finishDeadLetter(letter)
                    case .failure(let error): self?.reportDeadLetterFailure(error)
                    }
                }
            } catch {
                // Left pending and marked: a restart delivers it again.
                reportDeadLetterFailure(error)
                continue
            }
        }
    }

    /// An event the dead-letter queue could not take stays pending, marked for the queue, until a restart:
    /// said once per group, through the log's problem observers (the broker logs them as errors).
    private func reportDeadLetterFailure(_ error: LogError) {
        log.reportProblem(
            about: "dead-letters of \(name)",
            "the dead-letter queue of consumer group \(name) could not take an event (\(error)): it stays pending, "
                + "neither delivered nor dead-lettered, until the broker restarts")
    }

    /// The dead letter is durable: the event is done in the group — unless a replay came first (the letter
    /// is readable in the queue a moment before this is called) and made it pending again, which it stays.
    private func finishDeadLetter(_ letter: DeadLetter) {
        let finished = state.withLock { state in
            guard state.cursors[letter.partition].pending[letter.offset]?.deadLettering == true else { return false }
            state.cursors[letter.partition].pending.removeValue(forKey: letter.offset)
            state.version += 1
            return true
        }
        if finished { changed() }
    }

    // MARK: Dead letters

    /// The dead letters not yet replayed or purged.
    public var deadLetterCount: Int64 {
        let from = state.withLock { $0.deadLettersFrom }
        let bounds = deadLetters.bounds
        return max(0, bounds.end - max(from, bounds.start))
    }

    /// Up to `limit` dead letters not yet replayed or purged, oldest first.
    public func listDeadLetters(limit: Int) throws(LogError) -> [StoredRecord] {
        let from = state.withLock { $0.deadLettersFrom }
        return try deadLetters.read(from: max(from, deadLetters.bounds.start), maximumRecords: limit)
    }

    /// What a replay or purge of dead letters did.
    public struct DeadLetterOutcome: Sendable, Equatable {
        /// Dead letters given back to the group (replay) or dropped (purge).
        public let count: Int
        /// Dead letters whose original event retention deleted from the log: a replay keeps them in the
        /// queue (appended again at its end).
        public let kept: Int
        /// The state version that records it: ``whenCommitted(_:_:)`` says when it is on disk.
        public let version: UInt64
    }

    /// Drops every dead letter kept so far (appended later ones stay).
    public func purgeDeadLetters() -> DeadLetterOutcome {
        let end = deadLetters.bounds.end
        let (count, version) = state.withLock { state in
            let count = max(0, end - state.deadLettersFrom)
            state.deadLettersFrom = max(state.deadLettersFrom, end)
            state.version += 1
            return (Int(count), state.version)
        }
        changed()
        discardDeadLetters(before: end, once: version)
        return DeadLetterOutcome(count: count, kept: 0, version: version)
    }

    /// Once the state that moved `deadLettersFrom` to `offset` is on disk, deletes the dead-letter segments
    /// before it: not sooner, or a crash would restore dead letters (or a replay's pending events) that are
    /// gone. A failure leaves the space to the next purge, replay or start.
    private func discardDeadLetters(before offset: Int64, once version: UInt64) {
        whenCommitted(version) { [deadLetters] result in
            guard case .success = result else { return }
            _ = try? deadLetters.discard(before: offset)
        }
    }

    /// Gives every dead letter kept so far back to the group: each original event is pending again with no
    /// attempts spent, due at once, delivered to whoever owns its partition. In the same state change the
    /// queue moves past them, so a crash leaves them either dead letters or pending, never both or neither.
    /// A dead letter whose original event retention deleted is kept: appended to the queue again. The queue
    /// is read a page at a time (up to 1 000 letters or about a megabyte), each page its own state change,
    /// so that a long queue is never held in memory whole; letters appended after the replay began wait for
    /// the next.
    public func replayDeadLetters() throws(LogError) -> DeadLetterOutcome {
        let end = deadLetters.bounds.end
        var next = max(state.withLock { $0.deadLettersFrom }, deadLetters.bounds.start)
        var replayed = 0
        var kept = 0
        var version = state.withLock { $0.version }
        while next < end {
            let letters = try deadLetters.read(from: next, maximumRecords: 1000).filter { $0.offset < end }
            guard let last = letters.last else { break }
            let page = try replay(letters, through: last.offset + 1)
            replayed += page.replayed
            kept += page.kept
            version = page.version
            next = last.offset + 1
        }
        discardDeadLetters(before: next, once: version)
        return DeadLetterOutcome(count: replayed, kept: kept, version: version)
    }

    /// Replays one page of dead letters and moves the queue to `end`, past them, in one state change.
    private func replay(_ letters: [StoredRecord], through end: Int64) throws(LogError)
        -> (replayed: Int, kept: Int, version: UInt64)
    {
        let now = clock.monotonic()
        var originals: [(partition: Int, offset: Int64, timestamp: Int64)] = []
        var expired: [StoredRecord] = []
        for letter in letters {
            guard let envelope = try? EventEnvelope(json: letter.bytes, form: .delivered),
                let partition = envelope.metadata["original_partition"].flatMap({ Int($0) }),
                let offset = envelope.metadata["original_offset"].flatMap({ Int64($0) }),
                (0..<log.partitionCount).contains(partition), offset >= log.bounds(partition: partition).start
            else {
                expired.append(letter)
                continue
            }
            originals.append((partition, offset, letter.timestamp))
        }
        // The letters whose original event retention deleted are appended again first, and durably, before
        // the queue moves past them: they are the only copy of those events. Moved first, an append that
        // failed, or a crash before it was on disk, lost them (the next start discards what the queue moved
        // past). If one fails, nothing moves; a later replay finds them all again (and the copies appended so
        // far: a kept letter may then be kept twice).
        try appendDurably(expired)
        var effects = Effects()
        let (replayed, version) = state.withLock { state in
            var replayed = 0
            for original in originals {
                // Not yet read by the group (a restore of older state), or already pending again: nothing to do.
                // One still on its way to the queue is this letter's event, its append durable but not yet
                // finished in the group (``finishDeadLetter(_:)``): it is taken back like the others.
                let current = state.cursors[original.partition].pending[original.offset]
                guard original.offset < state.cursors[original.partition].next,
                    current == nil || current?.deadLettering == true
                else { continue }
                replayed += 1
                // Changed in place: through a copy of the cursor, each letter would copy its tables whole.
                state.cursors[original.partition].pending[original.offset] = Pending(
                    attempts: 0, timestamp: original.timestamp, holder: nil, deadline: now)
                state.cursors[original.partition].due.insert(original.offset)
                if let owner = state.owners[original.partition], state.members[owner]?.waiting == true {
                    state.members[owner]!.waiting = false
                    effects.wake.append(state.members[owner]!.handle)
                }
            }
            state.deadLettersFrom = max(state.deadLettersFrom, end)
            state.version += 1
            effects.changed = true
            return (replayed, state.version)
        }
        apply(effects)
        return (replayed, expired.count, version)
    }

    /// Appends `letters` to the dead-letter queue again and returns once they are all durable (on the calling
    /// thread, which waits: a replay runs on the blocking-I/O threads).
    private func appendDurably(_ letters: [StoredRecord]) throws(LogError) {
        guard !letters.isEmpty else { return }
        let done = DispatchGroup()
        let failure = StateLock<LogError?>(nil)
        for letter in letters {
            done.enter()
            do throws(LogError) {
                try deadLetters.append(letter.bytes, timestamp: letter.timestamp) { result in
                    if case .failure(let error) = result { failure.withLock { $0 = $0 ?? error } }
                    done.leave()
                }
            } catch {
                done.leave()
                failure.withLock { $0 = $0 ?? error }
                break
            }
        }
        // Not for ever: an append the queue's close (the group deleted) catches between its check and its
        // queue is never answered.
        if done.wait(timeout: .now() + .seconds(30)) == .timedOut { throw .closed }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    // MARK: Lag and persistence

    /// Per partition: the committed offset, the head of the log and the age of the oldest event not
    /// acknowledged yet (pending, or not yet delivered). Events that retention deleted before the group got
    /// to them are not counted: the committed offset shown is at least the partition's first.
    public func lag() -> [PartitionLag] {
        let now = clock.wall()
        let cursors = state.withLock { $0.cursors }
        return cursors.enumerated().map { partition, cursor in
            let bounds = log.bounds(partition: partition)
            let committed = max(cursor.committed, bounds.start)
            var oldest = cursor.pending.lazy.filter { $0.key >= bounds.start }.map(\.value.timestamp).min()
            if oldest == nil, committed < bounds.end {
                oldest = (try? log.read(partition: partition, from: committed, maximumRecords: 1))?.first?.timestamp
            }
            return PartitionLag(
                partition: partition, committed: committed, head: bounds.end,
                oldestUnackedAgeMs: oldest.map { max(0, now - $0) })
        }
    }

    /// What the state file keeps, copied under the lock (copy on write: the group's next change pays for the
    /// copy), with its version; what changed before it is taken as written. ``snapshot(of:)`` encodes it,
    /// outside the lock.
    private func takeState() -> (taken: TakenState, version: UInt64) {
        state.withLock { state in
            for partition in state.cursors.indices {
                state.cursors[partition].nextMoved = false
                _ = state.cursors[partition].pending.takeTouched()
            }
            state.deadLettersMoved = false
            return (TakenState(cursors: state.cursors, deadLettersFrom: state.deadLettersFrom), state.version)
        }
    }

    private struct TakenState: Sendable {
        let cursors: [Cursor]
        let deadLettersFrom: Int64
    }

    private func snapshot(of taken: TakenState) -> GroupSnapshot {
        let partitions = taken.cursors.map { cursor in
            var pending = cursor.pending.map {
                GroupSnapshot.Pending(offset: $0.key, attempts: $0.value.attempts, timestamp: $0.value.timestamp)
            }
            pending.sort { $0.offset < $1.offset }
            return GroupSnapshot.Position(next: cursor.next, pending: pending)
        }
        return GroupSnapshot(
            group: name, topics: topics.map(\.text), partitions: partitions, deadLettersFrom: taken.deadLettersFrom)
    }

    /// What changed since the committer last looked, and the version that includes it.
    private func takeChanges() -> (changes: GroupStateChanges, version: UInt64) {
        state.withLock { state in
            var changes = GroupStateChanges()
            for partition in state.cursors.indices {
                if state.cursors[partition].nextMoved {
                    state.cursors[partition].nextMoved = false
                    changes.changes.append(.next(partition: partition, state.cursors[partition].next))
                }
                for offset in state.cursors[partition].pending.takeTouched() {
                    if let pending = state.cursors[partition].pending[offset] {
                        changes.changes.append(
                            .pending(
                                partition: partition,
                                GroupSnapshot.Pending(
                                    offset: offset, attempts: pending.attempts, timestamp: pending.timestamp)))
                    } else {
                        changes.changes.append(.settled(partition: partition, offset: offset))
                    }
                }
            }
            if state.deadLettersMoved {
                state.deadLettersMoved = false
                changes.changes.append(.deadLettersFrom(state.deadLettersFrom))
            }
            return (changes, state.version)
        }
    }

    /// Stops every write of the group's state, waiting for one under way, and closes its dead-letter queue:
    /// the group is deleted (``ConsumerGroups/delete(_:)``) and its files are about to go.
    func retire() {
        writer.withLock { $0.retire() }
        deadLetters.close()
        // Whoever waits for a change to be on disk (a dead-letter purge racing the delete) is told it never
        // will be; the committer no longer looks at this group.
        let waiters = state.withLock { state in
            state.retired = true
            defer { state.commitWaiters.removeAll() }
            return state.commitWaiters
        }
        for waiter in waiters { waiter.callback(.failure(.closed)) }
    }

    /// Whether the group was deleted.
    public var isRetired: Bool { state.withLock { $0.retired } }

    /// Writes what changed since the last write — appended to the journal, or now and then the whole state
    /// (``GroupStateWriter``); then calls the waiters it covers.
    ///
    /// The whole state runs on a thread of its own: with a million events pending it takes about 300 ms to
    /// encode and write, and the committer that calls this writes every group's state, so the other groups'
    /// acks would wait for it. Meanwhile this group's commits are put off (what changes is noted and written
    /// to the new journal once the state file is down); a failed write fails the waiters so far, as a failed
    /// append does, and the next commit tries the whole state again. `closing` waits for a running write and
    /// writes what is left on the calling thread.
    func commit(closing: Bool = false) {
        if let running = compacting.withLock({ $0 }) {
            guard closing else { return }
            running.wait()
        }
        guard state.withLock({ $0.version > $0.committedVersion || !$0.commitWaiters.isEmpty }) else { return }
        if writer.withLock({ $0.wantsState }) {
            let (taken, version) = takeState()
            guard !closing else {
                writeState(taken, version)
                return
            }
            let running = DispatchGroup()
            running.enter()
            compacting.withLock { $0 = running }
            let started = NamedThread.tryStart("herald-gstate") { [self] in
                let succeeded = writeState(taken, version)
                compacting.withLock { $0 = nil }
                running.leave()
                // What changed meanwhile goes to the new journal. After a failure the waiters so far have
                // failed, and the next change tries again, as after a failed append — unless a waiter came in
                // after the failure, while the committer passed this group over: it is not left waiting for
                // another change. (A failing disk is tried again only as waiters come, never in a loop.)
                if succeeded || state.withLock({ !$0.commitWaiters.isEmpty }) { changed() }
            }
            if !started {
                // No thread to be had: written here, holding back the other groups' commits as it once did.
                let succeeded = writeState(taken, version)
                compacting.withLock { $0 = nil }
                running.leave()
                if succeeded || state.withLock({ !$0.commitWaiters.isEmpty }) { changed() }
            }
            return
        }
        let result = writer.withLock { (writer: inout GroupStateWriter) -> Result<UInt64, LogError> in
            let (changes, version) = takeChanges()
            do throws(LogError) {
                if !changes.isEmpty { try writer.append(changes) }
                return .success(version)
            } catch {
                return .failure(error)
            }
        }
        settle(result)
    }

    /// Writes `taken` as the whole state, then calls the waiters it covers; whether it was written.
    @discardableResult
    private func writeState(_ taken: TakenState, _ version: UInt64) -> Bool {
        let snapshot = snapshot(of: taken)
        let result = writer.withLock { (writer: inout GroupStateWriter) -> Result<UInt64, LogError> in
            do throws(LogError) {
                try writer.writeState(snapshot)
                return .success(version)
            } catch {
                return .failure(error)
            }
        }
        settle(result)
        if case .success = result { return true }
        return false
    }

    /// Calls the waiters a write covers: those up to its version once it is on disk; after a failure, every
    /// waiter so far (the next commit writes the whole state).
    private func settle(_ result: Result<UInt64, LogError>) {
        let waiters = state.withLock { state in
            let version = (try? result.get()) ?? state.version
            if case .success = result { state.committedVersion = max(state.committedVersion, version) }
            let ready = state.commitWaiters.filter { $0.version <= version }
            state.commitWaiters.removeAll { $0.version <= version }
            return ready
        }
        let outcome = result.map { _ in () }
        for waiter in waiters { waiter.callback(outcome) }
    }

    /// Calls `callback` once the state file holds `version` (from the committer's thread, the thread of a
    /// whole-state write, or at once).
    public func whenCommitted(_ version: UInt64, _ callback: @escaping @Sendable (Result<Void, LogError>) -> Void) {
        let now = state.withLock { state -> Result<Void, LogError>? in
            if state.committedVersion >= version { return .success(()) }
            if state.retired { return .failure(.closed) }
            state.commitWaiters.append((version, callback))
            return nil
        }
        if let now { callback(now) } else { changed() }
    }
}

/// A member of a consumer group: one durable subscription.
public final class GroupMember: Sendable {
    let id: UInt64
    /// The subscription id the client knows it by.
    public let subscription: UInt64
    private let wakeTarget = StateLock<(@Sendable () -> Void)?>(nil)

    init(id: UInt64, subscription: UInt64) {
        self.id = id
        self.subscription = subscription
    }

    /// Sets what wakes the member's delivery when events are ready for it.
    public func onWake(_ wake: @escaping @Sendable () -> Void) {
        wakeTarget.withLock { $0 = wake }
    }

    func wake() {
        wakeTarget.withLock { $0 }?()
    }
}
