import Foundation
import HeraldClient
import HeraldCore
import HeraldLog
import Testing

@testable import HeraldRabbitMQ
@testable import HeraldServer

/// The RabbitMQ bridge (docs/scale-out.md) against a real RabbitMQ node each test starts and stops
/// (``RabbitMQServer``). Serialized: every node is an Erlang VM, and two at once slow the whole suite.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RabbitMQBridgeTests {
    private func settings(
        _ server: RabbitMQServer, id: String, publish: [String] = ["#"],
        consume: [HeraldConfiguration.RabbitMQBridge.Consume] = []
    ) -> HeraldConfiguration.RabbitMQBridge {
        var bridge = HeraldConfiguration.RabbitMQBridge()
        bridge.url = server.url
        bridge.brokerID = id
        bridge.publish = publish
        bridge.consume = consume
        bridge.reconnectMaxMs = 500
        return bridge
    }

    /// Declares the exchange the bridge publishes to and a queue `watch` bound to it with `key`, from which a
    /// test takes what was bridged.
    private func watch(_ server: RabbitMQServer, key: String) async throws {
        try await server.withClient { amqp in
            try amqp.declareExchange("herald.events", type: "topic")
            try amqp.declareQueue("watch")
            try amqp.bindQueue("watch", to: "herald.events", key: key)
        }
    }

    private func client(_ broker: TestBroker, _ module: String) async throws -> HeraldClient {
        try await HeraldClient.connect(
            HeraldClientConfiguration(endpoint: .unixSocket(broker.socketPath), module: module))
    }

    private func event(_ type: String, chain: Int64, id: String, number: Int) throws -> EventEnvelope {
        try EventEnvelope(
            eventType: type, eventID: id, chainID: chain, payload: try RawJSON(validating: #"{"n":\#(number)}"#))
    }

    /// Waits until the bridge's group has nothing left to publish: every partition's position is at the
    /// log's head, which it reaches only once RabbitMQ confirmed everything before it.
    private func waitUntilBridged(_ broker: TestBroker, seconds: Int = 60) async throws {
        let group = try #require(broker.broker.groups?.group(named: HeraldConfiguration.RabbitMQBridge.groupName))
        let deadline = ContinuousClock.now + .seconds(seconds)
        while group.lag().contains(where: { $0.lag > 0 }) {
            guard ContinuousClock.now < deadline else {
                Issue.record("the bridge still lags after \(seconds) s: \(group.lag())")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until `queue` exists (an inbound side declared it).
    private func waitForQueue(_ server: RabbitMQServer, _ queue: String) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? await server.withClient({ try $0.declareQueue(queue, passive: true) })) == nil {
            guard ContinuousClock.now < deadline else { throw RabbitMQServerError("queue \(queue) never appeared") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test func storedEventsArePublishedPersistentAndConfirmedWithTheirTopicAsRoutingKey() async throws {
        try await RabbitMQServer.with { server in
            try await watch(server, key: "#")
            let broker = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(server, id: "alpha", publish: ["block.#", "transaction.#"])
            }
            let publisher = try await client(broker, "indexer")
            var published: [EventEnvelope] = []
            for number in 0..<4 {
                published.append(try event("block.new", chain: 1, id: "b1-\(number)", number: number))
                // Same key as chain 1's blocks, so same partition: published, it would come before the next block.
                _ = try await publisher.publishConfirmed(
                    try event("token.transfer", chain: 1, id: "t-\(number)", number: number))
                published.append(try event("block.new", chain: 2, id: "b2-\(number)", number: number))
            }
            published.append(try event("transaction.confirmed", chain: 1, id: "tx-0", number: 0))
            for envelope in published where envelope.eventType != "token.transfer" {
                _ = try await publisher.publishConfirmed(envelope)
            }
            let messages = try await server.take(published.count, from: "watch")
            #expect(messages.count == published.count)
            // Per routing key, in publish order; nothing of token.transfer.
            for key in ["block.new.1", "block.new.2", "transaction.confirmed.1"] {
                #expect(
                    messages.filter { $0.routingKey == key }.map(\.messageID)
                        == published.filter { $0.topic == key }.map(\.eventID))
            }
            #expect(!messages.contains { $0.routingKey.hasPrefix("token.") })
            for message in messages {
                #expect(message.deliveryMode == 2)
                #expect(message.appID == "alpha")
                let body = try EventEnvelope(json: message.body, form: .delivered)
                #expect(body.metadata["origin"] == "alpha")
                #expect(body.metadata["producer"] == "indexer")
                #expect(body.eventID == message.messageID)
                #expect(body.offset == nil && body.partition == nil)
                #expect(message.chainIDHeader == body.chainID.map { String($0) })
            }
            try await waitUntilBridged(broker)
            await publisher.close()
            try await broker.stop()
        }
    }

    @Test func anEventReachesTheOtherBrokerOnceAndNeverReturnsToItsOrigin() async throws {
        try await RabbitMQServer.with { server in
            let alpha = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(
                    server, id: "alpha", publish: ["block.#"], consume: [.init(queue: "alpha.in", patterns: ["#"])])
            }
            let beta = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(
                    server, id: "beta", publish: ["block.#"], consume: [.init(queue: "beta.in", patterns: ["block.#"])])
            }
            try await waitForQueue(server, "alpha.in")
            try await waitForQueue(server, "beta.in")
            let alphaWatcher = try await client(alpha, "watcher")
            let betaWatcher = try await client(beta, "watcher")
            let onAlpha = try await alphaWatcher.subscribe(["block.#"], buffer: 1000)
            let onBeta = try await betaWatcher.subscribe(["block.#"], buffer: 1000)
            let alphaPublisher = try await client(alpha, "indexer")
            var sent: [String] = []
            for number in 0..<50 {
                let envelope = try event("block.new", chain: Int64(number % 5), id: "a-\(number)", number: number)
                _ = try await alphaPublisher.publishConfirmed(envelope)
                sent.append(envelope.eventID)
            }
            // From a publisher that is not a broker: the same event twice (dedup keeps one), a body that is
            // not an event (rejected), and an event with no event_id of its own but a message id.
            try await server.withClient { amqp in
                let gamma = #"{"event_type":"block.new","event_id":"g-1","chain_id":7,"metadata":{"origin":"gamma"}}"#
                try amqp.publish(exchange: "herald.events", routingKey: "block.new.7", body: Array(gamma.utf8))
                try amqp.publish(exchange: "herald.events", routingKey: "block.new.7", body: Array(gamma.utf8))
                try amqp.publish(exchange: "herald.events", routingKey: "block.bad", body: Array("not json".utf8))
                let foreign = #"{"event_type":"block.new","chain_id":8}"#
                try amqp.publish(
                    exchange: "herald.events", routingKey: "block.new.8", body: Array(foreign.utf8),
                    properties: .init(messageID: "f-1"))
            }
            // Beta sees alpha's 50, g-1 once and f-1, then publishes its own marker.
            var atBeta: [EventEnvelope] = []
            for await envelope in onBeta {
                atBeta.append(envelope)
                if Set(atBeta.map(\.eventID)).isSuperset(of: sent + ["g-1", "f-1"]) { break }
            }
            let betaPublisher = try await client(beta, "indexer")
            _ = try await betaPublisher.publishConfirmed(try event("block.new", chain: 9, id: "beta-marker", number: 0))
            // Alpha's queue got its own 50 back before beta's marker: once the marker is here, they were dropped.
            var atAlpha: [EventEnvelope] = []
            for await envelope in onAlpha {
                atAlpha.append(envelope)
                if envelope.eventID == "beta-marker" { break }
            }
            #expect(atBeta.map(\.eventID).count == Set(atBeta.map(\.eventID)).count, "no event reached beta twice")
            #expect(atBeta.filter { sent.contains($0.eventID) }.allSatisfy { $0.metadata["origin"] == "alpha" })
            #expect(atBeta.first { $0.eventID == "f-1" }?.metadata["origin"] == "rabbitmq")
            #expect(atAlpha.map(\.eventID).sorted() == (sent + ["g-1", "f-1", "beta-marker"]).sorted())
            #expect(atAlpha.first { $0.eventID == "beta-marker" }?.metadata["origin"] == "beta")
            // The rejected body was not put back: nothing waits in beta's queue.
            #expect(try await server.withClient { amqp in try amqp.declareQueue("beta.in", passive: true) } == 0)
            let metrics = testMetrics.emitToString()
            #expect(metrics.contains(#"herald_bridge_received_total{outcome="invalid"}"#))
            #expect(metrics.contains(#"herald_bridge_received_total{outcome="own"}"#))
            for client in [alphaPublisher, betaPublisher, alphaWatcher, betaWatcher] { await client.close() }
            try await alpha.stop()
            try await beta.stop()
        }
    }

    @Test func rabbitMQStoppedAndRestartedMidStreamLosesNothing() async throws {
        try await RabbitMQServer.with { server in
            try await watch(server, key: "block.#")
            let broker = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(server, id: "alpha", publish: ["block.#"])
            }
            let publisher = try await client(broker, "indexer")
            let total = 300
            var sent: [EventEnvelope] = []
            for number in 0..<total {
                sent.append(try event("block.new", chain: Int64(number % 3), id: "e-\(number)", number: number))
            }
            let group = try #require(broker.broker.groups?.group(named: HeraldConfiguration.RabbitMQBridge.groupName))
            for envelope in sent.prefix(100) { _ = try await publisher.publishConfirmed(envelope) }
            try await waitUntilBridged(broker)
            try await server.stop()
            // Accepted and stored while RabbitMQ is down; the bridge lags and holds them.
            for envelope in sent[100..<200] { _ = try await publisher.publishConfirmed(envelope) }
            #expect(group.lag().reduce(0) { $0 + $1.lag } > 0)
            try await server.start()
            for envelope in sent[200...] { _ = try await publisher.publishConfirmed(envelope) }
            try await waitUntilBridged(broker)
            let messages = try await server.take(total, from: "watch")
            let ids = messages.map(\.messageID)
            #expect(Set(ids) == Set(sent.map(\.eventID)), "every event reached RabbitMQ")
            // At least once, and in order per partition: the first copies of each chain keep publish order.
            for chain in 0..<3 {
                var firsts: [String] = []
                for message in messages
                where message.routingKey == "block.new.\(chain)" && !firsts.contains(message.messageID) {
                    firsts.append(message.messageID)
                }
                #expect(firsts == sent.filter { $0.chainID == Int64(chain) }.map(\.eventID))
            }
            await publisher.close()
            try await broker.stop()
        }
    }

    /// Under a resource alarm RabbitMQ stops reading a connection that publishes. A publish hanging for
    /// `confirm_timeout_ms` is cut (with a warning) and made again on a new connection; when the alarm
    /// clears, every event arrives. A stop during the alarm ends: before, the outbound thread hung in the
    /// publish, nothing was logged, and the broker did not stop until the alarm cleared.
    @Test func aResourceAlarmHangsNeitherTheBridgeNorTheStop() async throws {
        try await RabbitMQServer.with { server in
            try await watch(server, key: "block.#")
            let records = RecordingLogHandler.Records()
            let broker = try await TestBroker.start(
                durable: true, bridge: true, logger: RecordingLogHandler.logger(records)
            ) {
                $0.bridge = settings(server, id: "alpha", publish: ["block.#"])
                $0.bridge?.confirmTimeoutMs = 1000
            }
            let publisher = try await client(broker, "indexer")
            _ = try await publisher.publishConfirmed(try event("block.new", chain: 0, id: "first", number: 0))
            try await waitUntilBridged(broker)
            // Events of 200 KiB, 8 MiB in all: more than the sockets between the bridge and RabbitMQ hold, so
            // the bridge's publish waits for RabbitMQ to read.
            let padding = String(repeating: "x", count: 200 * 1024)
            func large(_ number: Int) throws -> EventEnvelope {
                try EventEnvelope(
                    eventType: "block.new", eventID: "large-\(number)", chainID: 0,
                    payload: try RawJSON(validating: #"{"n":\#(number),"padding":"\#(padding)"}"#))
            }
            try await server.control(["set_vm_memory_high_watermark", "0"])
            var sent = ["first"]
            for number in 1...40 { sent.append(try await publisher.publishConfirmed(try large(number)).eventID) }
            try await waitUntil { records.contains("a call to RabbitMQ is overdue by confirm_timeout_ms") }
            try await server.control(["set_vm_memory_high_watermark", "0.4"])
            try await waitUntilBridged(broker)
            // Cut connections publish again what was not confirmed: copies may come, none is missing.
            let messages = try await server.take(sent.count * 4, from: "watch", seconds: 3)
            #expect(Set(messages.map(\.messageID)) == Set(sent))

            try await server.control(["set_vm_memory_high_watermark", "0"])
            for number in 41...80 { _ = try await publisher.publishConfirmed(try large(number)) }
            await publisher.close()
            let stopping = ContinuousClock.now
            try await broker.stop()
            let took = ContinuousClock.now - stopping
            // The stop's grace (6 s: the outbound waits up to 5 s for confirms), then the connection is cut; the
            // rest of the bound is for a machine busy with the whole suite (the stop also syncs the log).
            #expect(took < .seconds(20), "the stop took \(took)")
            try await server.control(["set_vm_memory_high_watermark", "0.4"])
        }
    }

    /// A server that takes the TCP connection and never answers the AMQP handshake does not hold the stop:
    /// a connection still being made is cut at once (it held the stop for rabbitmq-c's 12 s handshake timeout).
    @Test func aStopCutsALoginTheServerNeverAnswers() async throws {
        let silent = try SilentListener()
        let broker = try await TestBroker.start(durable: true, bridge: true) {
            var bridge = HeraldConfiguration.RabbitMQBridge()
            bridge.url = "amqp://guest:guest@127.0.0.1:\(silent.port!)"
            bridge.brokerID = "alpha"
            $0.bridge = bridge
        }
        try await silent.waitForConnection()
        let stopping = ContinuousClock.now
        try await broker.stop()
        let took = ContinuousClock.now - stopping
        // Well under the 12 s it took (the rest is for a machine busy with the whole suite: the stop also
        // syncs the log).
        #expect(took < .seconds(8), "the stop took \(took)")
    }

    @Test func bridgeSetupDeclaresAGroupPartitionedByChainWithDeadLetters() async throws {
        try await RabbitMQServer.with { server in
            let setup = try HeraldRun.start(
                [
                    "bridge", "setup", "--url", server.url, "--group", "indexer", "--partitions", "3",
                    "--pattern", "block.#", "--max-deliver", "2", "--rabbitmq-plugins", RabbitMQServer.pluginsScript,
                    "--rabbitmq-node", server.node,
                ], environment: server.environment)
            let (status, output, errors) = await setup.finishWithOutput()
            #expect(status == 0, "\(errors)")
            #expect(output.contains("enabled the RabbitMQ plugin rabbitmq_consistent_hash_exchange"))
            #expect(output.contains("queue herald.group.indexer.2 (quorum"))
            // The same again is harmless; another number of partitions is refused, naming the one it has.
            for (partitions, accepted) in [("3", true), ("4", false), ("2", false)] {
                let again = try HeraldRun.start(
                    [
                        "bridge", "setup", "--url", server.url, "--group", "indexer", "--partitions", partitions,
                        "--pattern", "block.#", "--max-deliver", "2",
                    ], environment: server.environment)
                let (status, _, errors) = await again.finishWithOutput()
                #expect((status == 0) == accepted, "\(partitions): \(errors)")
                if !accepted {
                    #expect(
                        errors
                            == "herald: bridge setup: group 'indexer' has 3 partitions on RabbitMQ, not \(partitions): the number of a group's partitions cannot change (docs/scale-out.md); make a new group\n"
                    )
                }
            }

            let broker = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(server, id: "alpha", publish: ["block.#"])
            }
            let publisher = try await client(broker, "indexer")
            for number in 0..<4 {
                for chain in 1...6 {
                    _ = try await publisher.publishConfirmed(
                        try event("block.new", chain: Int64(chain), id: "c\(chain)-\(number)", number: number))
                }
            }
            try await waitUntilBridged(broker)
            let messages = try await server.withClient { amqp in
                try amqp.setPrefetch(100)
                for index in 0..<3 { try amqp.consume("herald.group.indexer.\(index)") }
                var messages: [AMQPConnection.Message] = []
                while messages.count < 24, let message = try amqp.nextMessage(timeoutMs: 30_000) {
                    messages.append(message)
                    try amqp.ack(message.deliveryTag)
                }
                return messages
            }
            #expect(messages.count == 24)
            for chain in 1...6 {
                let ofChain = messages.filter { $0.chainIDHeader == String(chain) }
                #expect(Set(ofChain.map(\.queue)).count == 1, "chain \(chain) is in one partition")
                #expect(ofChain.map(\.messageID) == (0..<4).map { "c\(chain)-\($0)" })
            }
            #expect(Set(messages.map(\.queue)).count > 1, "the chains are spread over the partitions")

            // A message refused twice (max-deliver 2) goes to the group's dead-letter queue.
            _ = try await publisher.publishConfirmed(try event("block.new", chain: 1, id: "poison", number: 0))
            try await waitUntilBridged(broker)
            let queue = messages.first { $0.chainIDHeader == "1" }!.queue
            let attempts = try await server.withClient { amqp in
                try amqp.consume(queue)
                var attempts = 0
                while attempts < 2, let message = try amqp.nextMessage(timeoutMs: 30_000) {
                    #expect(message.messageID == "poison")
                    attempts += 1
                    try amqp.reject(message.deliveryTag, requeue: true)
                }
                return attempts
            }
            #expect(attempts == 2)
            let dead = try await server.take(1, from: "herald.group.indexer.dead")
            #expect(dead.map(\.messageID) == ["poison"])
            await publisher.close()
            try await broker.stop()
        }
    }

    /// A `declare = false` queue that does not exist stops the inbound side before it takes any message:
    /// taken, then put back by the channel's close, each retry would spend a delivery of the other queues'
    /// messages, and a group queue's `x-delivery-limit` would dead-letter them unseen.
    @Test func aMissingQueueSpendsNoDeliveryOfTheOthers() async throws {
        try await RabbitMQServer.with { server in
            let setup = try HeraldRun.start(
                [
                    "bridge", "setup", "--url", server.url, "--group", "rep", "--partitions", "1", "--pattern", "rep.#",
                    "--max-deliver", "2", "--rabbitmq-plugins", RabbitMQServer.pluginsScript, "--rabbitmq-node",
                    server.node,
                ], environment: server.environment)
            let (status, _, errors) = await setup.finishWithOutput()
            #expect(status == 0, "\(errors)")
            let alpha = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(server, id: "alpha", publish: ["rep.#"])
            }
            let publisher = try await client(alpha, "sender")
            _ = try await publisher.publishConfirmed(try event("rep.x", chain: 1, id: "kept", number: 0))
            try await waitUntilBridged(alpha)
            await publisher.close()
            try await alpha.stop()

            let records = RecordingLogHandler.Records()
            let echo = try await TestBroker.start(
                durable: true, bridge: true, logger: RecordingLogHandler.logger(records)
            ) {
                $0.bridge = settings(
                    server, id: "echo", publish: [],
                    consume: [
                        .init(queue: "herald.group.rep.0", patterns: [], declare: false),
                        .init(queue: "herald.group.missing.0", patterns: [], declare: false),
                    ])
            }
            // Three attempts, each refused for the missing queue: with max-deliver 2, two would have been enough
            // to dead-letter the event had they taken it.
            try await waitUntil {
                records.all.filter {
                    ($0.contains("connection lost") || $0.contains("still cannot connect"))
                        && $0.contains("direction=inbound")
                }.count >= 3
            }
            #expect(records.contains("no queue 'herald.group.missing.0'"))
            let (ready, dead) = try await server.withClient { amqp in
                (
                    try amqp.declareQueue("herald.group.rep.0", passive: true),
                    try amqp.declareQueue("herald.group.rep.dead", passive: true)
                )
            }
            #expect(ready == 1 && dead == 0)
            try await echo.stop()
        }
    }

    /// RabbitMQ cancels a consumer whose queue is deleted and says so (`basic.cancel`); the bridge then
    /// reconnects and declares the queue again, instead of waiting on a consumer that will never deliver.
    @Test func aConsumedQueueDeletedUnderTheBridgeIsDeclaredAndConsumedAgain() async throws {
        try await RabbitMQServer.with { server in
            let records = RecordingLogHandler.Records()
            let broker = try await TestBroker.start(
                durable: true, bridge: true, logger: RecordingLogHandler.logger(records)
            ) {
                $0.bridge = settings(server, id: "alpha", publish: [], consume: [.init(queue: "in", patterns: ["tx"])])
            }
            try await waitForQueue(server, "in")
            let watcher = try await client(broker, "watcher")
            let events = try await watcher.subscribe(["tx"])
            try await server.withClient { amqp in try amqp.deleteQueue("in") }
            try await waitUntil { records.contains("RabbitMQ cancelled the consumer of queue 'in'") }
            // Declared, bound and consumed again before the bridge says it reconnected.
            try await waitUntil {
                records.all.contains { $0.contains("RabbitMQ bridge reconnected") && $0.contains("direction=inbound") }
            }
            try await server.withClient { amqp in
                try amqp.publish(
                    exchange: "herald.events", routingKey: "tx",
                    body: Array(#"{"event_type":"tx","event_id":"after-delete"}"#.utf8))
            }
            var received = events.makeAsyncIterator()
            #expect(await received.next()?.eventID == "after-delete")
            await watcher.close()
            try await broker.stop()
        }
    }

    /// An event larger than `max_message_bytes` goes to the bridge group's dead-letter queue, and the events
    /// after it are bridged: published, RabbitMQ would close the channel over it, and every connection would
    /// publish it again, bridging nothing more.
    @Test func anEventTooLargeForRabbitMQIsDeadLetteredAndTheRestBridged() async throws {
        try await RabbitMQServer.with { server in
            try await watch(server, key: "#")
            let broker = try await TestBroker.start(durable: true, bridge: true) {
                var bridge = settings(server, id: "alpha")
                bridge.maxMessageBytes = 1024
                $0.bridge = bridge
            }
            let publisher = try await client(broker, "indexer")
            let padding = String(repeating: "x", count: 2000)
            _ = try await publisher.publishConfirmed(
                try EventEnvelope(
                    eventType: "block.new", eventID: "large", chainID: 1,
                    payload: try RawJSON(validating: #"{"padding":"\#(padding)"}"#)))
            _ = try await publisher.publishConfirmed(try event("block.new", chain: 1, id: "small", number: 1))
            let messages = try await server.take(1, from: "watch")
            #expect(messages.map(\.messageID) == ["small"])
            try await waitUntilBridged(broker)
            let group = try #require(broker.broker.groups?.group(named: HeraldConfiguration.RabbitMQBridge.groupName))
            let letters = try group.listDeadLetters(limit: 10).map {
                try EventEnvelope(json: $0.bytes, form: .delivered)
            }
            #expect(letters.map(\.eventID) == ["large"])
            #expect(letters.first?.metadata["dead_letter_reason"] == "too_large_for_rabbitmq")
            await publisher.close()
            try await broker.stop()
        }
    }

    /// The backoff after a connection ends starts over only when the connection worked and what ended it will
    /// not end the next one the same way.
    @Test func theBackoffStartsOverOnlyAfterAConnectionThatWorked() {
        typealias Worker = BridgeWorker
        #expect(Worker.startsBackoffOver(connected: true, gaveUpStalled: false, madeProgress: false, refused: false))
        #expect(!Worker.startsBackoffOver(connected: false, gaveUpStalled: false, madeProgress: false, refused: false))
        #expect(!Worker.startsBackoffOver(connected: true, gaveUpStalled: true, madeProgress: false, refused: false))
        #expect(Worker.startsBackoffOver(connected: true, gaveUpStalled: true, madeProgress: true, refused: false))
        // A refusal (RabbitMQ's basic.nack, or a broker that cannot store) comes back on the next connection,
        // however much this one did first.
        #expect(!Worker.startsBackoffOver(connected: true, gaveUpStalled: false, madeProgress: true, refused: true))
    }

    /// The broker's own events describe its node: another broker's modules must not see its `module.loaded`
    /// or `node.shutdown` as their broker's.
    @Test func aBrokersOwnLifecycleEventsStayOnIt() async throws {
        try await RabbitMQServer.with { server in
            let alpha = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(server, id: "alpha", publish: ["#"])
            }
            let beta = try await TestBroker.start(durable: true, bridge: true) {
                $0.bridge = settings(
                    server, id: "beta", publish: [], consume: [.init(queue: "beta.all", patterns: ["#"])])
            }
            try await waitForQueue(server, "beta.all")
            let onBeta = try await (try await client(beta, "watcher")).subscribe(["#"], buffer: 1000)
            // A module loads on alpha (alpha stores its `module.loaded`), then alpha publishes a marker.
            let module = try await client(alpha, "indexer")
            _ = try await module.subscribe(["nothing"])
            _ = try await module.publishConfirmed(try event("x.marker", chain: 1, id: "marker", number: 0))
            var fromAlpha: [String] = []
            for await envelope in onBeta where envelope.metadata["origin"] == "alpha" {
                fromAlpha.append(envelope.eventType)
                if envelope.eventID == "marker" { break }
            }
            // Published in log order: what came before the marker would have come before it.
            #expect(fromAlpha == ["x.marker"])
            await module.close()
            try await alpha.stop()
            try await beta.stop()
        }
    }

    @Test func noClientMayJoinTheBridgesGroup() async throws {
        let broker = try await TestBroker.start(durable: true)
        let answer = try await broker.withModule("sneaky") { conversation in
            try await conversation.request(##"{"op":"subscribe","id":1,"topics":["#"],"group":"rabbitmq-bridge"}"##)
        }
        #expect(
            answer
                == #"{"op":"error","id":1,"code":"invalid_request","message":"group: 'rabbitmq-bridge' is reserved for the RabbitMQ bridge's position in the log"}"#
        )
        #expect(broker.broker.groups?.group(named: "rabbitmq-bridge") == nil)
        try await broker.stop()
    }

    /// rabbitmq-c is loaded when a bridge starts, not linked: a broker without one runs where it is missing.
    @Test func theHeraldBinaryDoesNotLinkRabbitMQ() async throws {
        let ldd = try HeraldRun.start([HeraldRun.executable], program: "/usr/bin/ldd")
        let (status, output, _) = await ldd.finishWithOutput()
        #expect(status == 0)
        #expect(output.contains("libc.so"))
        #expect(!output.contains("librabbitmq"))
    }

    @Test func aBrokerWithABridgeButNoLogIsRefused() async throws {
        var configuration = HeraldConfiguration()
        configuration.bridge = HeraldConfiguration.RabbitMQBridge()
        let broker = Broker(configuration: configuration, logger: .init(label: "bridge-test"))
        let error = #expect(throws: BridgeError.self) { try RabbitMQBridge(broker: broker) }
        #expect(error?.description == "bridge.rabbitmq: the bridge reads the durable log, and this broker keeps none")
    }
}
