import CHeraldAMQP
import Foundation
import HeraldCore
import HeraldLog
import HeraldServer
import Logging
import ServiceLifecycle

/// Why the bridge cannot start; `herald serve` prints it and exits.
public struct BridgeError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}

/// The RabbitMQ bridge (`[bridge.rabbitmq]`, docs/scale-out.md) as a `Service`: its outbound side
/// publishes the broker's stored events to the topic exchange, its inbound side feeds the configured
/// queues into the broker. Each runs on a thread of its own with its own connection, and reconnects with
/// backoff; on shutdown each finishes what it holds (briefly) and stops.
public final class RabbitMQBridge: Service {
    /// This broker's id in `metadata.origin`.
    public let brokerID: String
    private let outbound: BridgeOutbound
    private let inbound: BridgeInbound?

    /// Checks that rabbitmq-c can be loaded, settles the broker's id, and joins the `rabbitmq-bridge`
    /// consumer group (made on first start at `start`). Nothing connects until `run`.
    public init(broker: Broker) throws(BridgeError) {
        guard let settings = broker.configuration.bridge else {
            throw BridgeError("bridge.rabbitmq: not configured")
        }
        guard let groups = broker.groups else {
            throw BridgeError("bridge.rabbitmq: the bridge reads the durable log, and this broker keeps none")
        }
        var error = [CChar](repeating: 0, count: 256)
        guard herald_amqp_load(&error, error.count) == 0 else {
            throw BridgeError("bridge.rabbitmq: \(AMQPError(cBuffer: error))")
        }
        brokerID = try BrokerIdentity.resolve(settings.brokerID, dataDirectory: broker.configuration.dataDirectory)
        let (group, member): (ConsumerGroup, GroupMember)
        do throws(GroupError) {
            // The bridge holds what it took until RabbitMQ confirms it, however long an outage lasts: the group
            // never takes it back (100 years), and nothing counts as a failed attempt.
            (group, member) = try groups.join(
                group: HeraldConfiguration.RabbitMQBridge.groupName, topics: [try! TopicPattern("#")],
                start: settings.start == "earliest" ? .earliest : .latest,
                subscription: { broker.bus.reserveSubscriptionID() }, maxInFlight: settings.maxInFlight,
                ackWaitMs: 100 * 365 * 86_400_000)
        } catch {
            throw BridgeError("bridge.rabbitmq: \(error)")
        }
        let logger = broker.logger
        let metrics = BridgeMetrics()
        outbound = BridgeOutbound(
            settings: settings, brokerID: brokerID, group: group, member: member, logger: logger, metrics: metrics)
        inbound =
            settings.consume.isEmpty
            ? nil
            : BridgeInbound(settings: settings, brokerID: brokerID, broker: broker, logger: logger, metrics: metrics)
        logger.info(
            "RabbitMQ bridge configured",
            metadata: [
                "url": "\(HeraldConfiguration.redactingPassword(settings.url))", "exchange": "\(settings.exchange)",
                "broker_id": "\(brokerID)", "consume": "\(settings.consume.map(\.queue))",
            ])
    }

    public func run() async throws {
        outbound.start()
        inbound?.start()
        try? await gracefulShutdown()
        // Both begin at once, so that their graces overlap; the inbound is waited for first.
        inbound?.worker.beginStopping()
        outbound.worker.beginStopping()
        await inbound?.worker.stop()
        await outbound.worker.stop()
    }
}

/// This broker's id for `metadata.origin`: the configured `broker_id`, or one made once and kept in
/// `<data_dir>/broker-id` (the host name and eight random hex digits), like Kafka's `meta.properties`.
enum BrokerIdentity {
    static func resolve(_ configured: String, dataDirectory: String) throws(BridgeError) -> String {
        if !configured.isEmpty { return configured }
        let path = dataDirectory + "/broker-id"
        if let kept = try? String(contentsOfFile: path, encoding: .utf8) {
            let id = kept.trimmingCharacters(in: .whitespacesAndNewlines)
            guard HeraldConfiguration.isValidBrokerID(id) else {
                throw BridgeError("\(path): '\(id)' is not a broker id (1 to 64 of [A-Za-z0-9_.-])")
            }
            return id
        }
        let host = ProcessInfo.processInfo.hostName.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        let id =
            String(host.prefix(48)) + (host.isEmpty ? "" : "-")
            + String(format: "%08x", UInt32.random(in: .min ... .max))
        do {
            try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw BridgeError("\(path): cannot be written: \(error.localizedDescription)")
        }
        return id
    }
}
