/// A consumer group on RabbitMQ (docs/scale-out.md), as `herald bridge setup` declares it: the events of
/// the group's patterns on the bridge's topic exchange go through a consistent-hash exchange that spreads
/// them by their `chain_id` header over `partitions` quorum queues — all events of one chain in one queue,
/// in order — each with a single active consumer, `x-delivery-limit` and a dead-letter exchange whose
/// queue keeps what failed too often.
public struct GroupTopology: Sendable {
    public let group: String
    public let partitions: Int
    public let patterns: [String]
    /// The bridge's topic exchange.
    public let exchange: String
    /// Deliveries of a message before it is dead-lettered (`x-delivery-limit` counts redeliveries after
    /// the first, so it is set to `maxDeliver - 1`).
    public let maxDeliver: Int

    public init(group: String, partitions: Int, patterns: [String], exchange: String, maxDeliver: Int) {
        self.group = group
        self.partitions = partitions
        self.patterns = patterns
        self.exchange = exchange
        self.maxDeliver = maxDeliver
    }

    /// The consistent-hash exchange, bound to `exchange` with each pattern.
    public var hashExchange: String { "herald.group.\(group)" }
    public var deadLetterExchange: String { "herald.group.\(group).dlx" }
    public var deadLetterQueue: String { "herald.group.\(group).dead" }
    /// The queue of partition `index`.
    public func partitionQueue(_ index: Int) -> String { "herald.group.\(group).\(index)" }

    /// The RabbitMQ plugin the consistent-hash exchange comes from.
    public static let plugin = "rabbitmq_consistent_hash_exchange"

    /// Declares everything (again: declaring is idempotent while the arguments stay the same) and returns
    /// one line per object. When RabbitMQ does not know the `x-consistent-hash` type, `enablePlugin` is
    /// asked to enable ``plugin`` — it returns why it could not, or `nil` — and the declaration is tried once
    /// more.
    public func declare(url: String, enablePlugin: () -> String?) throws(AMQPError) -> [String] {
        do throws(AMQPError) {
            return try declareOnce(url: url)
        } catch  where error.description.contains("x-consistent-hash") || error.description.contains("503") {
            if let problem = enablePlugin() {
                throw AMQPError(
                    "\(error); the exchange type comes from the plugin \(Self.plugin), which could not be enabled: \(problem)"
                )
            }
            return try declareOnce(url: url)
        }
    }

    /// Whether `queue` exists (a passive declare; one that fails closes its channel, so each has its own
    /// connection).
    private static func exists(_ queue: String, url: String) throws(AMQPError) -> Bool {
        let connection = try AMQPConnection(url: url)
        defer { connection.close() }
        do {
            _ = try connection.declareQueue(queue, passive: true)
            return true
        } catch  where error.description.contains("404") {
            return false
        }
    }

    /// Refuses a group that exists with another number of partitions (docs/scale-out.md: it cannot change).
    /// Declaring more queues would bind them to the hash exchange and move chains between partitions; fewer
    /// would leave the others bound. A queue's own arguments do not say how many partitions its group has,
    /// so the partitions are counted: partition `partitions - 1` must exist and partition `partitions` not.
    private func checkPartitionCount(url: String) throws(AMQPError) {
        guard try Self.exists(partitionQueue(0), url: url) else { return }
        let fewer = try !Self.exists(partitionQueue(partitions - 1), url: url)
        var more = false
        if !fewer { more = try Self.exists(partitionQueue(partitions), url: url) }
        guard fewer || more else { return }
        var existing = 1
        while existing <= 1024 {
            guard try Self.exists(partitionQueue(existing), url: url) else { break }
            existing += 1
        }
        throw AMQPError(
            "group '\(group)' has \(existing) partitions on RabbitMQ, not \(partitions): the number of a group's "
                + "partitions cannot change (docs/scale-out.md); make a new group")
    }

    private func declareOnce(url: String) throws(AMQPError) -> [String] {
        try checkPartitionCount(url: url)
        let connection = try AMQPConnection(url: url)
        defer { connection.close() }
        var lines: [String] = []
        try connection.declareExchange(exchange, type: "topic")
        lines.append("exchange \(exchange) (topic)")
        try connection.declareExchange(
            hashExchange, type: "x-consistent-hash", arguments: [.string("hash-header", "chain_id")])
        for pattern in patterns {
            try connection.bindExchange(hashExchange, to: exchange, key: pattern)
        }
        lines.append(
            "exchange \(hashExchange) (x-consistent-hash on the chain_id header), bound to \(exchange) with \(patterns.joined(separator: ", "))"
        )
        try connection.declareExchange(deadLetterExchange, type: "fanout")
        try connection.declareQueue(deadLetterQueue, arguments: [.string("x-queue-type", "quorum")])
        try connection.bindQueue(deadLetterQueue, to: deadLetterExchange, key: "")
        lines.append("exchange \(deadLetterExchange) (fanout) -> queue \(deadLetterQueue) (quorum)")
        for index in 0..<partitions {
            let queue = partitionQueue(index)
            try connection.declareQueue(
                queue,
                arguments: [
                    .string("x-queue-type", "quorum"), .integer("x-delivery-limit", Int64(maxDeliver - 1)),
                    .string("x-dead-letter-exchange", deadLetterExchange),
                    .boolean("x-single-active-consumer", true),
                ])
            // The binding key of a consistent-hash exchange is the queue's weight.
            try connection.bindQueue(queue, to: hashExchange, key: "1")
            lines.append(
                "queue \(queue) (quorum, single active consumer, x-delivery-limit \(maxDeliver - 1), dead letters to \(deadLetterExchange))"
            )
        }
        return lines
    }
}
