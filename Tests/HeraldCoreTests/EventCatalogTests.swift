import Foundation
import Testing

@testable import HeraldCore

/// One value of every catalog type, with the JSON field names EVENTS.md gives for it.
let catalogSamples: [(event: any CatalogEvent, fields: Set<String>)] = {
    let hash = Hash(String(repeating: "ab", count: 32))!
    let package = PackageChange(
        dnpName: "geth", version: "1.2", operation: .install, status: .progress, progress: 0.5, error: "none")
    let system = SystemChange(
        type: .configChange, component: "node", data: .object(["k": .integer(1)]), timestamp: 1_700_000_000)
    let packageFields: Set<String> = ["dnpName", "version", "operation", "status", "progress", "error"]
    let systemFields: Set<String> = ["type", "component", "data", "timestamp"]
    return [
        (
            BlockNew(hash: "0xabc", blockNumber: 12345, timestamp: "2026-11-23T08:00:00Z", transactionCount: 100),
            ["hash", "block_number", "timestamp", "transaction_count"]
        ),
        (BlockDisconnected(hash: hash, height: 7), ["hash", "height"]),
        (ChainReorg(oldTip: hash, newTip: hash), ["old_tip", "new_tip"]),
        (
            TransactionPending(hash: "0x1", fromAddress: "0xa", toAddress: "0xb", feeRate: 2.5),
            ["hash", "from_address", "to_address", "fee_rate"]
        ),
        (
            TransactionConfirmed(hash: "0x1", blockNumber: 9, fromAddress: "0xa", toAddress: "0xb", status: .failed),
            ["hash", "block_number", "from_address", "to_address", "status"]
        ),
        (
            TokenTransfer(
                tokenAddress: "0xt", fromAddress: "0xa", toAddress: "0xb", amount: "123456789012345678901234567890",
                transactionHash: "0xh"), ["token_address", "from_address", "to_address", "amount", "transaction_hash"]
        ),
        (
            ContractVerified(address: "0xc", verificationStatus: "verified", verifiedAt: "2026-11-23T08:00:00Z"),
            ["address", "verification_status", "verified_at"]
        ),
        (
            ChainSync(network: "mainnet", syncing: true, progress: 0.97, peers: 12, blockHeight: 100),
            ["network", "syncing", "progress", "peers", "blockHeight"]
        ),
        (
            GovernanceProposalCreated(proposalId: "p1", repository: "r", prNumber: 4, tier: "t1"),
            ["proposal_id", "repository", "pr_number", "tier"]
        ),
        (GovernanceProposalVoted(proposalId: "p1", voter: "v", vote: "yes"), ["proposal_id", "voter", "vote"]),
        (
            GovernanceProposalMerged(proposalId: "p1", repository: "r", prNumber: 4),
            ["proposal_id", "repository", "pr_number"]
        ),
        (
            GovernanceForkDetected(forkId: "f", rulesetVersion: "2", adoptionCount: 3),
            ["fork_id", "ruleset_version", "adoption_count"]
        ),
        (
            PeerConnected(peerAddr: "1.2.3.4:8333", transportType: "tcp", services: 1, version: 70016),
            ["peer_addr", "transport_type", "services", "version"]
        ),
        (PeerDisconnected(peerAddr: "1.2.3.4:8333", reason: "timeout"), ["peer_addr", "reason"]),
        (
            PeerBanned(peerAddr: "1.2.3.4:8333", reason: "misbehaving", banDurationSeconds: 86400),
            ["peer_addr", "reason", "ban_duration_seconds"]
        ),
        (
            NetworkMessageReceived(peerAddr: "p", messageType: "inv", messageSize: 100, protocolVersion: 70016),
            ["peer_addr", "message_type", "message_size", "protocol_version"]
        ),
        (NetworkBroadcastStarted(messageType: "tx", targetPeers: 8), ["message_type", "target_peers"]),
        (
            NetworkBroadcastCompleted(messageType: "tx", successful: 7, failed: 1),
            ["message_type", "successful", "failed"]
        ),
        (ModuleLoaded(moduleName: "indexer", version: "1.0.0"), ["module_name", "version"]),
        (
            ModuleUnloaded(moduleName: "indexer", version: "1.0.0", reason: .crashed),
            ["module_name", "version", "reason"]
        ),
        (
            ModuleReloaded(moduleName: "indexer", oldVersion: "1", newVersion: "2"),
            ["module_name", "old_version", "new_version"]
        ),
        (ModuleCrashed(moduleName: "indexer", error: "signal 9"), ["module_name", "error"]),
        (
            ModuleHealthChanged(moduleName: "indexer", oldHealth: .healthy, newHealth: .degraded),
            ["module_name", "old_health", "new_health"]
        ),
        (NodeStartupCompleted(durationMs: 1200, components: ["broker", "log"]), ["duration_ms", "components"]),
        (NodeShutdown(reason: "signal", timeoutSeconds: 5), ["reason", "timeout_seconds"]),
        (NodeShutdownCompleted(durationMs: 300), ["duration_ms"]),
        (ConfigLoaded(changedSections: ["ipc"], configJson: "{}"), ["changed_sections", "config_json"]),
        (
            MaintenanceData(operation: .both, urgency: .high, reason: .lowDisk, targetAgeDays: 7, timeoutSeconds: 10),
            ["operation", "urgency", "reason", "target_age_days", "timeout_seconds"]
        ),
        (
            MaintenanceStarted(maintenanceType: "cleanup", estimatedDurationSeconds: 30),
            ["maintenance_type", "estimated_duration_seconds"]
        ),
        (
            MaintenanceCompleted(
                maintenanceType: "cleanup", success: true, durationMs: 25,
                results: .array([.string("ok"), .null, .bool(false), .number(1.5)])),
            ["maintenance_type", "success", "duration_ms", "results"]
        ),
        (
            HealthCheck(checkType: "full", nodeHealthy: true, healthReport: .object(["disk": .string("ok")])),
            ["check_type", "node_healthy", "health_report"]
        ),
        (
            ResourceDiskSpaceLow(availableBytes: 1, totalBytes: 100, percentFree: 1.0, diskPath: "/data"),
            ["available_bytes", "total_bytes", "percent_free", "disk_path"]
        ),
        (
            ResourceLimitWarning(
                resourceType: "consumer_lag", usagePercent: 120, currentUsage: 1200, limit: 1000, thresholdPercent: 100),
            ["resource_type", "usage_percent", "current_usage", "limit", "threshold_percent"]
        ),
        (
            PlatformNotification(
                id: "n1", type: .warning, title: "Disk", body: "Low", timestamp: 1_700_000_000,
                actions: [["label": .string("Open")]]), ["id", "type", "title", "body", "timestamp", "actions"]
        ),
        (PackageInstall(package), packageFields),
        (PackageUpdate(package), packageFields),
        (PackageRemove(package), packageFields),
        (SystemRestart(system), systemFields),
        (SystemUpdate(system), systemFields),
        (ConfigChanged(system), systemFields),
        (ValidatorStatus(["active": .bool(true), "balance": .string("32")]), ["active", "balance"]),
        (ChainData(["height": .integer(5)]), ["height"]),
    ]
}()

@Suite struct EventCatalogTests {
    /// EVENTS.md's event types, copied by hand so that a type missing from both the registry and the
    /// samples still fails.
    static let specifiedEventTypes: Set<String> = [
        "block.new", "block.disconnected", "chain.reorg", "transaction.pending", "transaction.confirmed",
        "token.transfer", "contract.verified", "chain.sync", "governance.proposal_created",
        "governance.proposal_voted", "governance.proposal_merged", "governance.fork_detected", "peer.connected",
        "peer.disconnected", "peer.banned", "network.message_received", "network.broadcast_started",
        "network.broadcast_completed", "module.loaded", "module.unloaded", "module.reloaded", "module.crashed",
        "module.health_changed", "node.startup_completed", "node.shutdown", "node.shutdown_completed",
        "config.loaded", "maintenance.data", "maintenance.started", "maintenance.completed", "health.check",
        "resource.disk_space_low", "resource.limit_warning", "notification", "package.install", "package.update",
        "package.remove", "system.restart", "system.update", "config.changed", "validator.status", "chain.data",
    ]

    @Test func coversEveryEventOfTheSpecification() {
        #expect(Self.specifiedEventTypes.count == 42)
        #expect(Set(EventCatalog.eventTypes) == Self.specifiedEventTypes)
        #expect(Set(EventCatalog.schemas.keys) == Self.specifiedEventTypes)
    }

    @Test func coversEveryCatalogTypeOnce() {
        #expect(catalogSamples.count == EventCatalog.all.count)
        let sampled = Set(catalogSamples.map { type(of: $0.event).eventType })
        #expect(sampled == Set(EventCatalog.eventTypes))
        #expect(Set(EventCatalog.eventTypes).count == EventCatalog.all.count)
        for eventType in EventCatalog.eventTypes {
            #expect(throws: Never.self) { try EnvelopeFields.validateEventType(eventType) }
        }
    }

    @Test(arguments: catalogSamples.indices)
    func roundTripsThroughTheBusTyped(_ index: Int) async throws {
        try await roundTrip(catalogSamples[index].event, fields: catalogSamples[index].fields)
    }

    private func roundTrip<Event: CatalogEvent>(_ event: Event, fields: Set<String>) async throws {
        let bus = EventBus()
        let subscription = try bus.subscribe(Event.self)
        #expect(try bus.publish(event, chainID: 138).delivered == 1)
        var iterator = subscription.makeAsyncIterator()
        let received = try #require(await iterator.next())
        #expect(received.payload == event)
        #expect(received.envelope.eventType == Event.eventType)
        #expect(received.envelope.topic == Event.eventType + ".138")
        // The wire names are exactly EVENTS.md's.
        let object = try #require(
            JSONSerialization.jsonObject(with: Data(received.envelope.payload!.bytes)) as? [String: Any])
        #expect(Set(object.keys) == fields)
        // And the payload passes validation.
        #expect(throws: Never.self) { try EventCatalog.validatePayload(of: received.envelope) }
    }

    /// The schema `validate_payloads` uses and the Swift type must agree: same field names, and a field is
    /// required in the schema exactly when decoding the type fails without it.
    @Test(arguments: catalogSamples.indices)
    func schemaAgreesWithTheSwiftType(_ index: Int) throws {
        let (event, fields) = catalogSamples[index]
        let eventType = type(of: event).eventType
        let schema = try #require(EventCatalog.schemas[eventType])
        let payload = try RawJSON(encoding: event)
        guard let schemaFields = schema.fields else {
            #expect(throws: Never.self) { try EventCatalog.validatePayload(payload, eventType: eventType) }
            return
        }
        #expect(Set(schemaFields.map(\.name)) == fields)
        let object = try #require(JSONSerialization.jsonObject(with: Data(payload.bytes)) as? [String: Any])
        for field in schemaFields {
            var without = object
            without[field.name] = nil
            let bytes = Array(try JSONSerialization.data(withJSONObject: without))
            let decodes = Self.decodes(like: event, bytes)
            #expect(decodes == !field.isRequired, "\(eventType).\(field.name)")
            let validates = (try? EventCatalog.validatePayload(RawJSON(unchecked: bytes), eventType: eventType)) != nil
            #expect(validates == !field.isRequired, "\(eventType).\(field.name)")
        }
    }

    private static func decodes<Event: CatalogEvent>(like event: Event, _ bytes: [UInt8]) -> Bool {
        (try? RawJSON(unchecked: bytes).decode(Event.self)) != nil
    }

    @Test func typedSubscriptionsSelectByChain() async throws {
        let bus = EventBus()
        let all = try bus.subscribe(BlockNew.self)
        let only138 = try bus.subscribe(BlockNew.self, chainID: 138)
        try bus.publish(BlockNew(hash: "a", blockNumber: 1), chainID: 138)
        try bus.publish(BlockNew(hash: "b", blockNumber: 2), chainID: 1)
        try bus.publish(BlockNew(hash: "c", blockNumber: 3))
        let tip = Hash(String(repeating: "0", count: 64))!
        try bus.publish(ChainReorg(oldTip: tip, newTip: tip), chainID: 138)
        try bus.publish(BlockNew(hash: "end", blockNumber: 4), chainID: 138)
        var hashes: [String] = []
        for await event in all {
            hashes.append(event.payload.hash)
            if event.payload.hash == "end" { break }
        }
        #expect(hashes == ["a", "b", "c", "end"])
        hashes = []
        for await event in only138 {
            hashes.append(event.payload.hash)
            if event.payload.hash == "end" { break }
        }
        #expect(hashes == ["a", "end"])
    }

    @Test func typedOnceWaitsForTheFirstDecodableEvent() async throws {
        let bus = EventBus()
        let loaded = try bus.once(ModuleLoaded.self, subscriber: "waiter")
        bus.publish(try EventEnvelope(eventType: "module.loaded", payload: try RawJSON(validating: "{}")))
        try bus.publish(ModuleLoaded(moduleName: "indexer", version: "1.0.0"))
        try bus.publish(ModuleLoaded(moduleName: "cache", version: "2.0.0"))
        var names: [String] = []
        for await event in loaded { names.append(event.payload.moduleName) }
        #expect(names == ["indexer"])
        #expect(bus.subscriptionCount == 0)
    }

    @Test func typedSubscriptionSkipsUndecodablePayloads() async throws {
        let bus = EventBus()
        let typed = try bus.subscribe(BlockNew.self, chainID: 1)
        bus.publish(
            try EventEnvelope(eventType: "block.new", chainID: 1, payload: try RawJSON(validating: "{\"hash\":5}")))
        try bus.publish(BlockNew(hash: "good", blockNumber: 2), chainID: 1)
        var iterator = typed.makeAsyncIterator()
        #expect(await iterator.next()?.payload.hash == "good")
    }

    // MARK: Payload validation

    @Test(arguments: [
        ("block.new", nil as String?, "payload: required for block.new" as String?),
        ("block.new", "[]", "payload: must be an object"),
        ("block.new", #"{"hash":"0x1"}"#, "payload.block_number: required"),
        ("block.new", #"{"hash":"0x1","block_number":"12"}"#, "payload.block_number: must be an integer"),
        ("block.new", #"{"hash":7,"block_number":12}"#, "payload.hash: must be a string"),
        ("block.new", #"{"hash":null,"block_number":12}"#, "payload.hash: must not be null"),
        (
            "block.disconnected", #"{"hash":"0xABC","height":1}"#,
            "payload.hash: must be 64 lowercase hexadecimal characters"
        ),
        (
            "transaction.confirmed",
            #"{"hash":"h","block_number":1,"from_address":"a","to_address":"b","status":"ok"}"#,
            #"payload.status: must be one of "success", "failed""#
        ),
        (
            "chain.sync", #"{"network":"n","syncing":"yes","progress":1,"peers":1,"blockHeight":1}"#,
            "payload.syncing: must be a boolean"
        ),
        ("node.startup_completed", #"{"duration_ms":1,"components":"broker"}"#, "payload.components: must be an array"),
        (
            "node.startup_completed", #"{"duration_ms":1,"components":["broker",2]}"#,
            "payload.components[1]: must be a string"
        ),
        (
            "notification", #"{"id":"1","type":"info","title":"t","body":"b","timestamp":1,"actions":[1]}"#,
            "payload.actions[0]: must be an object"
        ),
        ("validator.status", "[1]", "payload: must be an object"),
        // `token.transfer`'s amount is a decimal number in a string.
        (
            "token.transfer",
            #"{"token_address":"t","from_address":"a","to_address":"b","amount":"abc","transaction_hash":"h"}"#,
            #"payload.amount: must be a decimal number in a string, such as "1500000""#
        ),
        (
            "token.transfer",
            #"{"token_address":"t","from_address":"a","to_address":"b","amount":"-1","transaction_hash":"h"}"#,
            #"payload.amount: must be a decimal number in a string, such as "1500000""#
        ),
        (
            "token.transfer",
            #"{"token_address":"t","from_address":"a","to_address":"b","amount":"1.","transaction_hash":"h"}"#,
            #"payload.amount: must be a decimal number in a string, such as "1500000""#
        ),
        // Integers are JSON integers: no fraction, no exponent, 64 bits.
        ("block.new", #"{"hash":"h","block_number":12.0}"#, "payload.block_number: must be an integer"),
        ("block.new", #"{"hash":"h","block_number":1e3}"#, "payload.block_number: must be an integer"),
        ("block.new", #"{"hash":"h","block_number":1.5}"#, "payload.block_number: must be an integer"),
        (
            "block.new", #"{"hash":"h","block_number":9223372036854775808}"#,
            "payload.block_number: must be an integer that fits 64 bits"
        ),
        (
            "block.new", #"{"hash":"h","block_number":1,"block_number":2}"#,
            "payload.block_number: appears more than once"
        ),
        (
            "block.new", #"{"hash":"h","block_number":1,"transaction_count":"many"}"#,
            "payload.transaction_count: must be an integer"
        ),
        (
            "chain.sync", #"{"network":"n","syncing":true,"progress":"half","peers":1,"blockHeight":1}"#,
            "payload.progress: must be a number"
        ),
        // Numbers a Double cannot hold, which typed subscribers could not decode.
        (
            "chain.sync", #"{"network":"n","syncing":true,"progress":1e400,"peers":1,"blockHeight":1}"#,
            "payload.progress: must be a number a 64-bit float can hold"
        ),
        (
            "chain.sync", #"{"network":"n","syncing":true,"progress":-1e-99999,"peers":1,"blockHeight":1}"#,
            "payload.progress: must be a number a 64-bit float can hold"
        ),
        ("chain.sync", #"{"network":"n","syncing":true,"progress":0.0e-99999,"peers":1,"blockHeight":1}"#, nil),
        (
            "module.unloaded", #"{"module_name":"m","version":"1","reason":7}"#,
            #"payload.reason: must be one of "bye", "disconnected", "stopped", "crashed""#
        ),
        (
            "maintenance.completed",
            #"{"maintenance_type":"t","success":true,"duration_ms":1,"results":{"any":[1,null]}}"#, nil
        ),
        ("block.new", #"{"hash":"h","block_number":-5,"timestamp":null}"#, nil),
    ])
    func validatesPayloadsAgainstTheCatalog(_ eventType: String, _ payload: String?, _ message: String?) throws {
        let raw = try payload.map { try RawJSON(validating: $0) }
        do {
            try EventCatalog.validatePayload(raw, eventType: eventType)
            #expect(message == nil, "accepted, but expected: \(message ?? "")")
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func acceptsValidAndExtendedPayloads() throws {
        // Optional fields may be absent, numbers may be integers where a Double is asked, and extra fields
        // are the producer's business.
        let payload = try RawJSON(validating: #"{"hash":"0x1","fee_rate":3,"extra":{"x":1}}"#)
        #expect(throws: Never.self) { try EventCatalog.validatePayload(payload, eventType: "transaction.pending") }
        for amount in ["0", "123456789012345678901234567890", "1.5"] {
            let transfer = try RawJSON(
                validating:
                    #"{"token_address":"t","from_address":"a","to_address":"b","amount":"\#(amount)","transaction_hash":"h"}"#
            )
            #expect(throws: Never.self) { try EventCatalog.validatePayload(transfer, eventType: "token.transfer") }
        }
        // Types outside the catalog pass unchecked.
        #expect(throws: Never.self) { try EventCatalog.validatePayload(nil, eventType: "custom.thing") }
    }
}
