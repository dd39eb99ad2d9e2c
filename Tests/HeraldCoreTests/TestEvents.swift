import DequeModule

@testable import HeraldCore

/// Envelopes numbered through their payload, so tests can check order and identity.
func numberedEvent(_ number: Int, type: String = "block.new", chainID: Int64? = 138) -> EventEnvelope {
    try! EventEnvelope(eventType: type, chainID: chainID, payload: try! RawJSON(validating: "{\"n\":\(number)}"))
}

extension EventEnvelope {
    /// The number of an envelope made by `numberedEvent`.
    var number: Int {
        let text = payload!.description
        return Int(text.dropFirst(5).dropLast())!
    }
}

extension Subscription {
    /// Takes everything queued (waiting for at least one event), with sequence numbers, and counts it as
    /// delivered, as the broker's connection writer does after writing.
    func takeQueued() async -> [SubscriptionDelivery] {
        var batch = Deque<SubscriptionDelivery>()
        guard await nextBatch(into: &batch) else { return [] }
        recordDelivered(batch.count)
        return Array(batch)
    }

    /// Waits until a consumer is parked on this subscription, so a test exercises the wake-up path.
    func waitUntilParked() async {
        while !storage.hasParkedConsumer { await Task.yield() }
    }
}
