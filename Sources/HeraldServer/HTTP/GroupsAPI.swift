import HTTPTypes
import HeraldCore
import HeraldLog
import HeraldProtocol
import Hummingbird
import NIOPosix

/// Consumer groups with their lag, and their dead-letter queues (PROTOCOL.md §4.2, §7).
extension HTTPGateway {
    private struct Groups: Encodable {
        struct Group: Encodable {
            struct Partition: Encodable {
                let partition: Int
                let committed: Int64
                let head: Int64
                let lag: Int64
                /// `null` when nothing is unacknowledged.
                @NullWhenAbsent var oldestUnackedAgeMs: Int64?

                enum CodingKeys: String, CodingKey {
                    case partition, committed, head, lag
                    case oldestUnackedAgeMs = "oldest_unacked_age_ms"
                }
            }
            let name: String
            let topics: [String]
            let members: Int
            let partitions: [Partition]
            let deadLetters: Int64

            enum CodingKeys: String, CodingKey {
                case name, topics, members, partitions
                case deadLetters = "dead_letters"
            }
        }
        let groups: [Group]
    }

    private struct Deleted: Encodable {
        let deleted: String
    }

    private struct Outcome: Encodable {
        let replayed: Int?
        let purged: Int?
        let kept: Int?
    }

    func addGroupRoutes(to router: Router<GatewayContext>) {
        let broker = self.broker
        router.get("/v1/groups") { _, _ in
            let groups = (broker.groups?.all ?? []).sorted { $0.name < $1.name }.map { group in
                Groups.Group(
                    name: group.name, topics: group.topics.map(\.text), members: group.memberCount,
                    partitions: group.lag().map { lag in
                        Groups.Group.Partition(
                            partition: lag.partition, committed: lag.committed, head: lag.head, lag: lag.lag,
                            oldestUnackedAgeMs: lag.oldestUnackedAgeMs)
                    },
                    deadLetters: group.deadLetterCount)
            }
            return JSONResponse.encode(Groups(groups: groups))
        }
        router.get("/v1/groups/{group}/dead-letters") { request, context -> Response in
            let group = try self.group(context)
            try self.requireSubscribe(group, context)
            let limit = try Self.pageLimit(request)
            let letters: [StoredRecord]
            // Disk reads run on the blocking-I/O threads, not on those every connection's tasks share.
            let read = try await NIOThreadPool.singleton.runIfActive {
                Result { () throws(LogError) in try group.listDeadLetters(limit: limit) }
            }
            do throws(LogError) {
                letters = try read.get()
            } catch {
                throw APIError(.internalServerError, "storage_failed", "the dead letters could not be read: \(error)")
            }
            var writer = JSONWriter(capacity: letters.reduce(64) { $0 + $1.bytes.count + 1 })
            writer.append(raw: "{\"dead_letters\":[")
            for (index, letter) in letters.enumerated() {
                if index > 0 { writer.append(raw: ",") }
                writer.append(raw: letter.bytes)
            }
            writer.append(raw: "],\"count\":")
            writer.append(integer: group.deadLetterCount)
            writer.append(raw: "}")
            return JSONResponse.raw(writer.bytes)
        }
        router.post("/v1/groups/{group}/dead-letters/replay") { _, context -> Response in
            try context.requireAdmin("replaying dead letters")
            let group = try self.group(context)
            let outcome: ConsumerGroup.DeadLetterOutcome
            let replay = try await NIOThreadPool.singleton.runIfActive {
                Result { () throws(LogError) in try group.replayDeadLetters() }
            }
            do throws(LogError) {
                outcome = try replay.get()
            } catch {
                throw APIError(.internalServerError, "storage_failed", "the dead letters could not be read: \(error)")
            }
            try await self.committed(group, outcome.version)
            return JSONResponse.encode(Outcome(replayed: outcome.count, purged: nil, kept: outcome.kept))
        }
        router.delete("/v1/groups/{group}/dead-letters") { _, context -> Response in
            try context.requireAdmin("purging dead letters")
            let group = try self.group(context)
            let outcome = group.purgeDeadLetters()
            try await self.committed(group, outcome.version)
            return JSONResponse.encode(Outcome(replayed: nil, purged: outcome.count, kept: nil))
        }
        addGroupDeleteRoute(to: router)
    }

    /// `DELETE /v1/groups/{group}`: deletes a group that has no member, with its committed offsets and dead
    /// letters (409 `group_in_use` while it has members).
    private func addGroupDeleteRoute(to router: Router<GatewayContext>) {
        let broker = self.broker
        router.delete("/v1/groups/{group}") { _, context -> Response in
            try context.requireAdmin("deleting a consumer group")
            let name = try self.groupName(context)
            guard let groups = broker.groups else { throw APIError.notFound("group: '\(name)' does not exist") }
            let partitions = broker.log?.partitionCount ?? 0
            // Its files are removed on the blocking-I/O threads, not on those every connection's tasks share.
            let deletion = try await NIOThreadPool.singleton.runIfActive {
                Result { () throws(GroupError) in try groups.delete(name) }
            }
            do throws(GroupError) {
                try deletion.get()
            } catch {
                switch error {
                case .notFound: throw APIError.notFound(error.description)
                case .inUse: throw APIError(.conflict, "group_in_use", error.description)
                default: throw APIError(.internalServerError, "storage_failed", error.description)
                }
            }
            // Unless a new group of the name was made meanwhile: its series are its own.
            if groups.group(named: name) == nil { broker.metrics.forgetGroup(name, partitions: partitions) }
            broker.logger.notice("consumer group deleted", metadata: ["group": "\(name)"])
            return JSONResponse.encode(Deleted(deleted: name))
        }
    }

    /// The group name the path gives; 400 for a name no group can have.
    private func groupName(_ context: GatewayContext) throws -> String {
        let name = try context.pathParameter("group")
        guard ClientRequest.isValidModuleName(name) else {
            throw APIError.invalidRequest("group: '\(name)' is not a group name, 1 to 64 of [a-z0-9_-]")
        }
        return name
    }

    /// The group the path names; 400 for a name no group can have, 404 for a group that does not exist.
    private func group(_ context: GatewayContext) throws -> ConsumerGroup {
        let name = try groupName(context)
        guard let group = broker.groups?.group(named: name) else {
            throw APIError.notFound("group: '\(name)' does not exist")
        }
        return group
    }

    /// Dead letters are events of the group's topics: reading them needs the token's subscribe permission.
    private func requireSubscribe(_ group: ConsumerGroup, _ context: GatewayContext) throws {
        do throws(ProtocolError) {
            try broker.checkSubscribe(group.topics, from: context.principal("http"))
        } catch {
            throw APIError(.forbidden, "forbidden", "group '\(group.name)': \(error.message)")
        }
    }

    /// Returns once the group's state file records `version`: the change survives a restart.
    private func committed(_ group: ConsumerGroup, _ version: UInt64) async throws {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, LogError>, Never>) in
            group.whenCommitted(version) { continuation.resume(returning: $0) }
        }
        if case .failure(let error) = result {
            // Deleted while the request ran.
            if group.isRetired { throw APIError.notFound("group: '\(group.name)' was deleted") }
            throw APIError(.internalServerError, "storage_failed", "the group state could not be written: \(error)")
        }
    }
}
