import HeraldCore
import HeraldProtocol

/// What became of an event a bridge fed into the broker.
package enum BridgedOutcome: Sendable, Equatable {
    /// Durable in the log (or not stored by `log.persist`, and delivered).
    case stored
    /// Its `event_id` was accepted within the dedup window: the first copy is durable, this one is dropped.
    case duplicate
    /// Never acceptable (too large, an invalid payload under `validate_payloads`): the reason.
    case refused(String)
    /// Not stored now (the log failed, the broker is shutting down): worth trying again later.
    case failed(String)
}

extension Broker {
    /// The name a bridge's events are published under (`metadata.producer` when they carry none, and
    /// statistics).
    package static let bridgeProducer = "bridge:rabbitmq"

    /// What a bridged envelope may have beyond `max_frame − 1024`: the `,"origin":"<broker id>"` (a broker
    /// id is at most 64 bytes) its sending broker added to an event that fitted there. Without it, an event
    /// near the limit accepted on one broker would be refused by the other. A delivery frame's header takes
    /// about 100 of the 1 024 bytes kept for it, so the envelope still fits in one frame.
    package static let bridgedOriginAllowance = 128

    /// Accepts an event that arrived from another broker through a bridge, as a confirmed publish of a
    /// module would be (PROTOCOL.md §4.3, §4.4): checked, deduplicated by `event_id`, stored and delivered.
    /// `completion` is called once, when the outcome is known — for a stored event, once it is durable.
    package func acceptBridged(_ fields: EnvelopeFields, _ completion: @escaping @Sendable (BridgedOutcome) -> Void) {
        @Sendable func outcome(_ error: ProtocolError) -> BridgedOutcome {
            error.code == .storageFailed || error.code == .shuttingDown
                ? .failed(error.message) : .refused(error.message)
        }
        do throws(ProtocolError) {
            let admitted = try admit(fields, from: Principal(name: Self.bridgeProducer, permissions: nil))
            let receipt = try accept(
                admitted,
                confirming: { result in
                    switch result {
                    case .success(let receipt): completion(receipt.duplicate ? .duplicate : .stored)
                    case .failure(let error): completion(outcome(error))
                    }
                }, extraBytes: Self.bridgedOriginAllowance)
            if let receipt { completion(receipt.duplicate ? .duplicate : .stored) }
        } catch {
            completion(outcome(error))
        }
    }
}
