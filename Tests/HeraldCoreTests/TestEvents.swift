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
    /// Takes everything queued now, with sequence numbers; the subscription must have events queued.
    func takeQueued() async -> [SubscriptionDelivery] {
        var batch = Deque<SubscriptionDelivery>()
        guard await nextBatch(into: &batch) else { return [] }
        return Array(batch)
    }
}
