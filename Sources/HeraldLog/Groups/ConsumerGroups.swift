import Dispatch
import Foundation
import HeraldCore
import Synchronization

/// Every consumer group of a log, in `<data dir>/groups/<name>/`: made on first subscribe, loaded at start,
/// woken when the log makes events readable, and committed by one thread that writes each changed group's
/// state — one write covering every change since the last, as the log's group commit does (a group's
/// occasional whole-state write runs on a thread of its own, ``ConsumerGroup/commit(closing:)``).
public final class ConsumerGroups: Sendable {
    public let directory: String
    public let settings: GroupSettings
    private let log: DurableLog
    private let clock: GroupClock
    private let registry = StateLock(Registry())
    private let committer = Committer()

    /// The groups by name, and the names of those being deleted (``delete(_:)``): no group of such a name is
    /// made until its files are gone, or it would be made on the directory being removed.
    private struct Registry {
        var groups: [String: ConsumerGroup] = [:]
        var deleting: Set<String> = []
    }

    private final class Committer: Sendable {
        let wake = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let isWoken = Atomic<Bool>(false)
        let closing = Atomic<Bool>(false)

        func signal() {
            if !isWoken.exchange(true, ordering: .acquiringAndReleasing) { wake.signal() }
        }
    }

    /// Loads the groups under `directory` (each `<name>/state.json`) and starts the committer.
    public init(log: DurableLog, directory: String, settings: GroupSettings, clock: GroupClock = .system)
        throws(LogError)
    {
        self.log = log
        self.directory = directory
        self.settings = settings
        self.clock = clock
        try LogFile.makeDirectory(directory)
        var loaded: [String: ConsumerGroup] = [:]
        for name in try LogFile.names(in: directory).sorted() {
            // A deleted group whose files were not all gone when the broker stopped.
            if name.hasPrefix(Self.deletedPrefix) {
                try? FileManager.default.removeItem(atPath: directory + "/" + name)
                continue
            }
            let file = GroupStateFile(directory: directory + "/" + name)
            guard let snapshot = try file.read() else { continue }
            var topics: [TopicPattern] = []
            for text in snapshot.topics {
                guard let pattern = try? TopicPattern(text) else {
                    throw .incompatible("\(file.path): topic pattern '\(text)' is not valid")
                }
                topics.append(pattern)
            }
            guard snapshot.partitions.count == log.partitionCount else {
                throw .incompatible(
                    "\(file.path): the group has \(snapshot.partitions.count) partitions but the log has \(log.partitionCount)"
                )
            }
            loaded[name] = try makeGroup(name: name, topics: topics, snapshot: snapshot, start: .latest)
        }
        let all = loaded
        registry.withLock { $0.groups = all }
        // The thread holds the registry until `close` stops it.
        NamedThread.start("herald-groups") { [self] in runCommitter() }
        log.observeReadable { [weak self] partition in
            guard let self else { return }
            for group in self.registry.withLock({ Array($0.groups.values) }) { group.readable(partition: partition) }
        }
    }

    private func makeGroup(name: String, topics: [TopicPattern], snapshot: GroupSnapshot?, start: GroupStart)
        throws(LogError) -> ConsumerGroup
    {
        let committer = self.committer
        return try ConsumerGroup(
            name: name, topics: topics, settings: settings, log: log, directory: directory + "/" + name,
            clock: clock, snapshot: snapshot, start: start, changed: { committer.signal() })
    }

    /// The group `name`; made, starting at `start`, when it does not exist. A group that exists must be
    /// asked for with the same topics (in any order). Members join through ``join(group:topics:start:subscription:maxInFlight:ackWaitMs:module:)``,
    /// not through the group this returns: a join that is not under the registry's lock could be into a group
    /// being deleted.
    public func group(named name: String, topics: [TopicPattern], start: GroupStart) throws(GroupError)
        -> ConsumerGroup
    {
        try registry.withLock { registry in existingOrNew(in: &registry, name, topics: topics, start: start) }.get()
    }

    /// The group `name` of `registry`, made and added when it does not exist.
    private func existingOrNew(
        in registry: inout Registry, _ name: String, topics: [TopicPattern], start: GroupStart
    ) -> Result<ConsumerGroup, GroupError> {
        if registry.deleting.contains(name) { return .failure(.deleting(name)) }
        if let existing = registry.groups[name] {
            guard Set(existing.topics) == Set(topics) else {
                return .failure(.topicsDiffer(group: name, existing: existing.topics.map(\.text)))
            }
            return .success(existing)
        }
        do throws(LogError) {
            let made = try makeGroup(name: name, topics: topics, snapshot: nil, start: start)
            registry.groups[name] = made
            return .success(made)
        } catch {
            return .failure(.storage("group '\(name)' could not be made: \(error)"))
        }
    }

    /// The group `name` (made, starting at `start`, when it does not exist) with a new member: one step under
    /// the registry's lock, so that ``delete(_:)`` never removes a group a member is joining. Members join
    /// through here. `subscription` gives the member's subscription id once it joins (a subscribe refused
    /// takes none).
    public func join(
        group name: String, topics: [TopicPattern], start: GroupStart, subscription: () -> UInt64,
        maxInFlight: Int?, ackWaitMs: Int64?, module: String? = nil
    ) throws(GroupError) -> (group: ConsumerGroup, member: GroupMember) {
        try registry.withLock { registry in
            existingOrNew(in: &registry, name, topics: topics, start: start).map { group in
                let member = group.join(
                    subscription: subscription(), maxInFlight: maxInFlight, ackWaitMs: ackWaitMs, module: module)
                return (group, member)
            }
        }.get()
    }

    /// Deletes the group `name` and its files — committed offsets, journal, dead letters — once it has no
    /// member; a later subscribe to that name makes a new group. Its directory is first renamed to a name no
    /// group can have and then removed: a broker stopped in between deletes the rest at its next start, and
    /// never loads a group with part of its files.
    public func delete(_ name: String) throws(GroupError) {
        let removed = registry.withLock { registry -> Result<ConsumerGroup, GroupError> in
            guard let group = registry.groups[name] else { return .failure(.notFound(name)) }
            let members = group.memberCount
            guard members == 0 else { return .failure(.inUse(group: name, members: members)) }
            registry.groups.removeValue(forKey: name)
            registry.deleting.insert(name)
            return .success(group)
        }
        let group = try removed.get()
        defer { _ = registry.withLock { $0.deleting.remove(name) } }
        group.retire()
        let doomed =
            directory + "/" + Self.deletedPrefix + name + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        do throws(LogError) {
            try LogFile.rename(directory + "/" + name, to: doomed)
            try LogFile.syncDirectory(directory)
        } catch {
            throw .storage("group '\(name)' was removed, but its files could not be: \(error)")
        }
        try? FileManager.default.removeItem(atPath: doomed)
    }

    /// The start of the name a deleted group's directory is renamed to (not a group name: a group's is
    /// `[a-z0-9_-]`).
    static let deletedPrefix = ".deleted-"

    /// The group `name`, if it exists.
    public func group(named name: String) -> ConsumerGroup? {
        registry.withLock { $0.groups[name] }
    }

    /// The modules with a member in a group whose topics take events of `eventType` (on any chain).
    public func subscribers(for eventType: String) -> Set<String> {
        var modules = Set<String>()
        for group in all where group.topics.contains(where: { $0.matches(eventType: eventType) }) {
            modules.formUnion(group.memberModules)
        }
        return modules
    }

    /// Every group, by name.
    public var all: [ConsumerGroup] {
        registry.withLock { $0.groups.values.sorted { $0.name < $1.name } }
    }

    /// Writes every changed state file now, and stops the committer; the dead-letter queues are closed.
    public func close() {
        guard !committer.closing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        committer.signal()
        committer.finished.wait()
        for group in all { group.deadLetters.close() }
    }

    private func runCommitter() {
        while true {
            committer.wake.wait()
            committer.isWoken.store(false, ordering: .sequentiallyConsistent)
            let closing = committer.closing.load(ordering: .acquiring)
            for group in all { group.commit(closing: closing) }
            if closing {
                committer.finished.signal()
                return
            }
        }
    }
}
