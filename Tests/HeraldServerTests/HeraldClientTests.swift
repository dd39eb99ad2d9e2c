import Foundation
import HeraldCore
import HeraldProtocol
import Synchronization
import Testing

@testable import HeraldClient
@testable import HeraldServer

/// HeraldClient against a real broker on a temporary socket.
@Suite(.timeLimit(.minutes(3)))
struct HeraldClientTests {
    private func configuration(_ broker: TestBroker, module: String) -> HeraldClientConfiguration {
        var configuration = HeraldClientConfiguration(endpoint: .unixSocket(broker.socketPath), module: module)
        configuration.reconnect.initialDelay = .milliseconds(20)
        configuration.reconnect.maximumDelay = .milliseconds(200)
        return configuration
    }

    @Test func aDurableSubscriptionAcknowledgesAndRedeliversWhatWasRefused() async throws {
        let broker = try await TestBroker.start(durable: true) {
            $0.log.persist = ["job"]
            $0.groups.backoffMs = [10]
        }
        let worker = try await HeraldClient.connect(configuration(broker, module: "worker"))
        let publisher = try await HeraldClient.connect(configuration(broker, module: "node"))
        for number in 1...3 {
            let receipt = try await publisher.publishConfirmed(
                try EventEnvelope(eventType: "job", eventID: "j-\(number)", key: "jobs"))
            #expect(receipt.offset == Int64(number - 1))
        }
        let jobs = try await worker.subscribe(["job"], group: "workers", from: .offset(1))
        var seen: [(String, Int)] = []
        for await delivery in jobs {
            seen.append((delivery.envelope.eventID, delivery.attempt))
            if delivery.envelope.eventID == "j-2" && delivery.attempt == 1 {
                try await delivery.nack()
            } else {
                try await delivery.ack(confirmed: true)
            }
            if seen.count == 3 { break }
        }
        #expect(seen.map(\.0) == ["j-2", "j-3", "j-2"])
        #expect(seen.map(\.1) == [1, 1, 2])
        let group = try #require(broker.broker.groups?.group(named: "workers"))
        #expect(group.lag().reduce(0) { $0 + $1.lag } == 0)
        await worker.close()
        await publisher.close()
        try await broker.stop()
    }

    @Test func consumeProcessesEachEventIDOnceAndAcknowledgesRepeats() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.log.persist = ["job"] }
        let worker = try await HeraldClient.connect(configuration(broker, module: "worker"))
        let publisher = try await HeraldClient.connect(configuration(broker, module: "node"))
        let jobs = try await worker.subscribe(["job"], group: "once")
        let processed = ProcessedEvents(capacity: 10)
        // Already done before this run (kept by the consumer with its results).
        await processed.insert("done-before")
        for id in ["a", "done-before", "b"] {
            try await publisher.publishConfirmed(try EventEnvelope(eventType: "job", eventID: id, key: "k"))
        }
        let handled = Recorded()
        let consuming = Task {
            try await jobs.consume(skipping: processed) { envelope in handled.append(envelope.eventID) }
        }
        // All three are acknowledged ("done-before" without being handled): the group has nothing left.
        let group = try #require(broker.broker.groups?.group(named: "once"))
        try await waitUntil { group.lag().reduce(0) { $0 + $1.lag } == 0 }
        jobs.cancel()
        try await consuming.value
        #expect(handled.values == ["a", "b"])
        let recorded = [await processed.contains("a"), await processed.contains("b")]
        #expect(recorded == [true, true])
        await worker.close()
        await publisher.close()
        try await broker.stop()
    }

    @Test func subscribePublishPingStatsAndSubscribers() async throws {
        let broker = try await TestBroker.start()
        let subscriber = try await HeraldClient.connect(configuration(broker, module: "indexer"))
        let publisher = try await HeraldClient.connect(configuration(broker, module: "node"))
        #expect(subscriber.session == "s-1")
        #expect(subscriber.maximumFrame == 1_048_576)

        let blocks = try await subscriber.subscribe(["block.new.*"])
        let receipt = try await publisher.publishConfirmed(
            try EventEnvelope(eventType: "block.new", eventID: "b-1", chainID: 138, payload: RawJSON(validating: "[1]"))
        )
        #expect(receipt == PublishReceipt(eventID: "b-1", duplicate: false, offset: nil, partition: nil))
        try await publisher.publish(try EventEnvelope(eventType: "block.new", eventID: "b-2", chainID: 1))

        var received: [EventEnvelope] = []
        for await envelope in blocks {
            received.append(envelope)
            if received.count == 2 { break }
        }
        #expect(received.map(\.eventID) == ["b-1", "b-2"])
        #expect(received[0].topic == "block.new.138")
        #expect(received[0].payload?.description == "[1]")
        #expect(received[0].metadata["producer"] == "node")

        #expect(try await publisher.ping() > .zero)
        #expect(try await publisher.subscribers(of: "block.new") == ["indexer"])
        // A delivery is counted when the write that carried it completes, which the client can see after the
        // frames themselves: the count is awaited before it is asked for.
        try await waitUntil { broker.broker.bus.deliveryStatistics(for: "indexer")?.successful == 2 }
        let stats = try await publisher.stats(module: "indexer")
        #expect(stats["indexer"]?.successful == 2)
        try await publisher.ready()
        await publisher.close()
        await subscriber.close()
        try await broker.stop()
    }

    @Test func theBrokersRefusalsAreThrownWithTheirCodes() async throws {
        let broker = try await TestBroker.start { $0.validatePayloads = true }
        let client = try await HeraldClient.connect(configuration(broker, module: "strict"))
        await #expect(throws: ProtocolError.self) {
            try await client.subscribe(["block..new"])
        }
        do {
            try await client.publishConfirmed(
                try EventEnvelope(eventType: "block.new", payload: RawJSON(validating: "{}")))
            Issue.record("an event without its catalog fields was accepted")
        } catch let error as ProtocolError {
            #expect(error.code == .invalidEvent)
        }
        do {
            _ = try await client.stats(module: "never-seen")
            Issue.record("stats of an unknown module answered")
        } catch let error as ProtocolError {
            #expect(error.code == .invalidRequest)
            #expect(error.message == "module: 'never-seen' was never seen")
        }
        await client.close()
        try await broker.stop()
    }

    @Test func aRefusedHelloFailsConnect() async throws {
        let broker = try await TestBroker.start { configuration in
            configuration.tokens = [.init(name: "t", secret: "right", publish: [], subscribe: [])]
        }
        var configuration = configuration(broker, module: "intruder")
        configuration.token = "wrong"
        do {
            _ = try await HeraldClient.connect(configuration)
            Issue.record("connected with a wrong token")
        } catch let error as ProtocolError {
            #expect(error.code == .unauthorized)
        }
        try await broker.stop()
    }

    @Test func anUnreachableBrokerFailsConnect() async throws {
        let configuration = HeraldClientConfiguration(endpoint: .unixSocket("/nonexistent/herald.sock"), module: "m")
        await #expect(throws: HeraldClientError.self) {
            _ = try await HeraldClient.connect(configuration)
        }
    }

    /// A connection that ends during the handshake (the broker died before its `welcome`) fails `connect`
    /// instead of leaving it waiting for a reply that cannot come.
    @Test func aConnectionLostDuringTheHandshakeFailsConnect() async throws {
        let directory = NSTemporaryDirectory() + "herald-handshake-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let listener = try SilentListener(unixPath: directory + "/h.sock")
        let attempt = Task {
            try await HeraldClient.connect(
                HeraldClientConfiguration(endpoint: .unixSocket(directory + "/h.sock"), module: "early"))
        }
        try await listener.waitForConnection()
        listener.closeConnections()
        await #expect(throws: HeraldClientError.self) { _ = try await attempt.value }
    }

    @Test func itReconnectsResubscribesAndSaysSoInItsLog() async throws {
        let directory = NSTemporaryDirectory() + "herald-reconnect-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let restartable: (inout HeraldConfiguration) -> Void = { configuration in
            configuration.dataDirectory = directory
            // Open connections are closed 100 ms after the shutdown starts.
            configuration.modules.shutdownTimeoutMs = 100
        }
        let first = try await TestBroker.start(restartable)
        let records = RecordingLogHandler.Records()
        var configuration = configuration(first, module: "survivor")
        configuration.logger = RecordingLogHandler.logger(records)
        let client = try await HeraldClient.connect(configuration)
        let events = try await client.subscribe(["tick"])
        try await client.ready()
        try await first.stop()

        let second = try await TestBroker.start(restartable)
        // Once the client is back, it has subscribed again and said ready again: it is loaded.
        try await waitUntil { second.broker.bus.subscribers(for: "tick") == ["survivor"] }
        try await waitUntil { second.broker.modules.loadedModules.contains(where: { $0.name == "survivor" }) }
        try await waitUntil { records.contains("reconnected to the broker") }
        #expect(records.contains("connection to the broker lost; reconnecting"))
        #expect(records.contains("reconnected to the broker herald.session=s-1 herald.subscriptions=1"))

        try await second.withModule("ticker") { (ticker: inout Conversation) async throws in
            _ = try await ticker.request(#"{"op":"publish","id":1,"event":{"event_type":"tick","event_id":"after"}}"#)
        }
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next()?.eventID == "after")
        await client.close()
        try await second.stop()
    }

    /// Several times the client's read budget (8 MiB of frames waiting for its reader) goes through one
    /// subscription: the reader gives the budget back as it takes frames, and the socket is read again.
    @Test func moreThanTheReadBudgetArrives() async throws {
        let broker = try await TestBroker.start()
        let subscriber = try await HeraldClient.connect(configuration(broker, module: "archive"))
        let events = try await subscriber.subscribe(["big"], buffer: 1000)
        let publisher = try await HeraldClient.connect(configuration(broker, module: "node"))
        let payload = try RawJSON(validating: "\"" + String(repeating: "x", count: 100_000) + "\"")
        let count = 250  // 25 MB
        for index in 0..<count {
            try await publisher.publish(try EventEnvelope(eventType: "big", eventID: "big-\(index)", payload: payload))
        }
        var received = 0
        for await _ in events {
            received += 1
            if received == count { break }
        }
        #expect(received == count)
        #expect(events.droppedByBroker == 0 && events.droppedByClient == 0)
        await publisher.close()
        await subscriber.close()
        try await broker.stop()
    }

    @Test func aConsumerTooFarBehindLosesTheNewestAndTheyAreCounted() async throws {
        let broker = try await TestBroker.start()
        var configuration = configuration(broker, module: "slow")
        configuration.subscriptionBuffer = 2
        let client = try await HeraldClient.connect(configuration)
        let events = try await client.subscribe(["n"])
        let publisher = try await HeraldClient.connect(self.configuration(broker, module: "fast"))
        for index in 1...10 {
            try await publisher.publishConfirmed(try EventEnvelope(eventType: "n", eventID: "n-\(index)"))
        }
        try await waitUntil { events.droppedByClient >= 8 }
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next()?.eventID == "n-1")
        #expect(await iterator.next()?.eventID == "n-2")
        #expect(events.droppedByBroker == 0)
        await publisher.close()
        await client.close()
        #expect(await iterator.next() == nil)
        try await broker.stop()
    }

    @Test func aRefusedFireAndForgetPublishIsLoggedWithItsEventID() async throws {
        let broker = try await TestBroker.start { $0.validatePayloads = true }
        let records = RecordingLogHandler.Records()
        var configuration = configuration(broker, module: "careless")
        configuration.logger = RecordingLogHandler.logger(records)
        let client = try await HeraldClient.connect(configuration)
        // block.new without its catalog fields.
        try await client.publish(try EventEnvelope(eventType: "block.new", eventID: "incomplete"))
        try await waitUntil { records.contains("the broker refused a publish") }
        #expect(records.contains("herald.event_id=incomplete"))
        #expect(records.contains("invalid_event: payload"))
        // An envelope the broker would refuse for its size is refused by the client, before it is sent.
        let huge = "\"" + String(repeating: "x", count: 1_048_576 - 1000) + "\""
        do {
            try await client.publish(try EventEnvelope(eventType: "big", payload: RawJSON(validating: huge)))
            Issue.record("an envelope above max_frame − 1024 was sent")
        } catch let error as ProtocolError {
            #expect(error.code == .invalidEvent)
        }
        // The connection stays.
        #expect(try await client.ping() > .zero)
        await client.close()
        try await broker.stop()
    }

    @Test func droppedEventsAreCountedFromSeqGaps() {
        let (stream, continuation) = AsyncStream<EventEnvelope>.makeStream()
        _ = stream
        let counters = HeraldSubscription.Counters(continuation: continuation)
        let envelope = try! EventEnvelope(eventType: "x")
        for seq: UInt64 in [1, 2, 5, 6, 10] { counters.deliver(envelope, seq: seq) }
        let subscription = HeraldSubscription(id: 1, topics: ["x"], stream: stream, counters: counters)
        #expect(subscription.droppedByBroker == 5)
    }
}

/// Strings recorded from another task.
final class Recorded: Sendable {
    private let list = Mutex<[String]>([])

    func append(_ value: String) { list.withLock { $0.append(value) } }

    var values: [String] { list.withLock { $0 } }
}
