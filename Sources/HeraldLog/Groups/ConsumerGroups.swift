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
    private let groups = StateLock<[String: ConsumerGroup]>([:])
    private let committer = Committer()

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
        groups.withLock { $0 = all }
        // The thread holds the registry until `close` stops it.
        NamedThread.start("herald-groups") { [self] in runCommitter() }
        log.observeReadable { [weak self] partition in
            guard let self else { return }
            for group in self.groups.withLock({ Array($0.values) }) { group.readable(partition: partition) }
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
    /// asked for with the same topics (in any order).
    public func group(named name: String, topics: [TopicPattern], start: GroupStart) throws(GroupError)
        -> ConsumerGroup
    {
        let result = groups.withLock { groups -> Result<ConsumerGroup, GroupError> in
            if let existing = groups[name] {
                guard Set(existing.topics) == Set(topics) else {
                    return .failure(.topicsDiffer(group: name, existing: existing.topics.map(\.text)))
                }
                return .success(existing)
            }
            do throws(LogError) {
                let made = try makeGroup(name: name, topics: topics, snapshot: nil, start: start)
                groups[name] = made
                return .success(made)
            } catch {
                return .failure(.storage("group '\(name)' could not be made: \(error)"))
            }
        }
        return try result.get()
    }

    /// The group `name`, if it exists.
    public func group(named name: String) -> ConsumerGroup? {
        groups.withLock { $0[name] }
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
        groups.withLock { $0.values.sorted { $0.name < $1.name } }
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
