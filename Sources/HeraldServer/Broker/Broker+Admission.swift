import HeraldCore
import HeraldLog
import HeraldProtocol

/// Who publishes or subscribes, as the broker checks it: a module on the IPC socket, an HTTP client or a
/// WebSocket.
struct Principal: Sendable {
    /// The name events get as `metadata.producer` when they carry none, and statistics are kept under.
    let name: String
    /// The permissions of the token presented; `nil` when no token is configured (everything is allowed).
    let permissions: HeraldConfiguration.Token?
}

/// Where an accepted event is, once it is durable: what a confirmed publish answers (PROTOCOL.md §4.4, §9).
struct PublishReceipt: Sendable, Equatable {
    let eventID: String
    let duplicate: Bool
    /// `nil` for an event that is not stored.
    let position: LogPosition?
}

extension Broker {
    /// Checks a publish by `principal` (PROTOCOL.md §2.4, §6): the broker is not shutting down, the event is
    /// not one of the lifecycle events only the broker publishes (EVENTS.md), the token's
    /// `publish` patterns match the topic, the payload passes validation when `validate_payloads` is on. The
    /// event comes back with its defaults applied (`event_id`, `key`; `timestamp` when accepted) and `metadata.producer`
    /// set to the principal's name unless it names one. The error carries no request id.
    func admit(_ fields: EnvelopeFields, from principal: Principal) throws(ProtocolError) -> EnvelopeFields {
        var fields = fields
        if isShuttingDown { throw ProtocolError(.shuttingDown, "the broker is shutting down") }
        // Subscribers of `module.loaded` and the others rely on them to say what the broker saw: a client's
        // copy could announce a module that never loaded, or a shutdown that is not happening.
        if EventCatalog.isPublishedByTheBroker(fields.eventType) {
            throw ProtocolError(
                .forbidden,
                "event: '\(fields.eventType)' is published by the broker itself (EVENTS.md, module and node lifecycle)")
        }
        // The metadata by which the broker tells events apart for the bridge (docs/scale-out.md): an event
        // of the broker's own (`producer` "herald") or one from another broker (`origin`) is not bridged.
        // A client's event claiming either would be stored and silently never bridged.
        if !fields.metadata.isEmpty, principal.name != Self.bridgeProducer {
            if fields.metadata["producer"] == Self.serverName {
                throw ProtocolError(
                    .forbidden, "metadata.producer: '\(Self.serverName)' names the broker itself, for its own events")
            }
            if fields.metadata["origin"] != nil {
                throw ProtocolError(
                    .forbidden,
                    "metadata.origin: set by the RabbitMQ bridge on events from another broker (docs/scale-out.md)")
            }
        }
        if let permissions = principal.permissions {
            let topic = Topic.of(eventType: fields.eventType, chainID: fields.chainID)
            guard permissions.publish.contains(where: { $0.matches(topic) }) else {
                throw ProtocolError(
                    .forbidden,
                    "event: topic '\(topic)' is not covered by the publish permissions of token '\(permissions.name)'"
                )
            }
        }
        if configuration.validatePayloads {
            do throws(EnvelopeError) {
                try EventCatalog.validatePayload(fields.payload, eventType: fields.eventType)
            } catch {
                throw ProtocolError(.invalidEvent, error.description)
            }
        }
        if fields.metadata["producer"] == nil { fields.metadata["producer"] = principal.name }
        fields.applyDefaults(stampingTime: false)
        return fields
    }

    /// Checks that `principal` may subscribe to `topics` (PROTOCOL.md §6, §9): every pattern is covered by
    /// one of the token's `subscribe` patterns. The error carries no request id.
    func checkSubscribe(_ topics: [TopicPattern], from principal: Principal) throws(ProtocolError) {
        guard let permissions = principal.permissions else { return }
        for (index, topic) in topics.enumerated() where !covered(topic, by: permissions) {
            throw ProtocolError(
                .forbidden,
                "topics[\(index)]: '\(topic.text)' is not covered by the subscribe permissions of token '\(permissions.name)'"
            )
        }
    }

    /// Whether `permissions`' `subscribe` patterns cover `topic`, remembered per token and pattern: the exact
    /// check can take milliseconds for tokens of many patterns, and clients subscribe to the same patterns
    /// again and again (each reconnect, each WebSocket).
    private func covered(_ topic: TopicPattern, by permissions: HeraldConfiguration.Token) -> Bool {
        let key = CoverageKey(token: permissions.name, pattern: topic.text)
        if let known = coverage.withLock({ $0[key] }) { return known }
        let answer = TopicPattern.isCovered(topic, by: permissions.subscribe)
        coverage.withLock { cache in
            if cache.count >= 4096 { cache.removeAll(keepingCapacity: true) }
            cache[key] = answer
        }
        return answer
    }

    /// The largest stored envelope a delivery frame can carry: `max_frame` less the frame's own fields.
    var largestEnvelope: Int { configuration.ipc.maxFrame - FrameLength.eventHeaderAllowance }

    /// What a confirmed publish is answered with once its event is durable: the receipt, or
    /// `storage_failed`.
    typealias ReceiptCallback = @Sendable (Result<PublishReceipt, ProtocolError>) -> Void

    /// Accepts an admitted event and says where it is (PROTOCOL.md §4.4, §9): for an event that is not
    /// stored the receipt is returned at once; for a stored one (a duplicate: the first event) `confirming`
    /// is called from the log's writer thread once it is durable under the fsync policy, and `nil` is
    /// returned. Without `confirming`, nobody waits for the disk.
    func accept(_ fields: EnvelopeFields, confirming: ReceiptCallback?, extraBytes: Int = 0) throws(ProtocolError)
        -> PublishReceipt?
    {
        let eventID = fields.eventID ?? ""
        let accepted: AcceptedEvent
        do throws(AcceptError) {
            var whenDurable: DurabilityCallback?
            if let confirming {
                whenDurable = { result in confirming(Self.receipt(result, eventID, duplicate: false)) }
            }
            accepted = try accept(fields, whenDurable: whenDurable, extraBytes: extraBytes)
        } catch {
            throw error.protocolError
        }
        guard let position = accepted.stored else {
            return PublishReceipt(eventID: accepted.envelope.eventID, duplicate: accepted.duplicate, position: nil)
        }
        if accepted.duplicate, let confirming {
            // The first event's position, once it is durable (it may still be on its way to the disk).
            log?.whenDurable(position) { confirming(Self.receipt($0, eventID, duplicate: true)) }
        }
        return nil
    }

    private static func receipt(_ result: Result<LogPosition, LogError>, _ eventID: String, duplicate: Bool)
        -> Result<PublishReceipt, ProtocolError>
    {
        result.map { PublishReceipt(eventID: eventID, duplicate: duplicate, position: $0) }
            .mapError { ProtocolError(.storageFailed, "the event could not be stored: \($0)") }
    }

    /// ``accept(_:confirming:)`` with the receipt to await. Events accepted one after the other are stored
    /// in that order, whenever their receipts are awaited.
    func acceptForReceipt(_ fields: EnvelopeFields) -> PendingReceipt {
        let receipt = PendingReceipt()
        do throws(ProtocolError) {
            if let now = try accept(fields, confirming: { receipt.complete($0) }) { receipt.complete(.success(now)) }
        } catch {
            receipt.complete(.failure(error))
        }
        return receipt
    }
}

/// A publish receipt that arrives when the event is durable; awaited by one task.
final class PendingReceipt: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Result<PublishReceipt, ProtocolError>, Never>?)
        case done(Result<PublishReceipt, ProtocolError>)
    }

    private let state = StateLock(State.waiting(nil))

    func complete(_ result: Result<PublishReceipt, ProtocolError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<PublishReceipt, ProtocolError>, Never>? in
            guard case .waiting(let waiter) = state else { return nil }
            state = .done(result)
            return waiter
        }
        waiter?.resume(returning: result)
    }

    /// Whether the event was refused as it was accepted (the log refused the append), not later.
    var failedAtOnce: Bool {
        state.withLock { state in
            if case .done(.failure) = state { return true }
            return false
        }
    }

    /// The receipt, or why the event could not be stored.
    var result: Result<PublishReceipt, ProtocolError> {
        get async {
            await withCheckedContinuation { continuation in
                let done = state.withLock { state -> Result<PublishReceipt, ProtocolError>? in
                    switch state {
                    case .done(let result): return result
                    case .waiting:
                        state = .waiting(continuation)
                        return nil
                    }
                }
                if let done { continuation.resume(returning: done) }
            }
        }
    }
}

extension AcceptError {
    /// The error a client is told (PROTOCOL.md §2.4), without a request id.
    var protocolError: ProtocolError {
        switch self {
        case .tooLarge(let size, let limit):
            ProtocolError(.invalidEvent, "the stored envelope is \(size) bytes, more than max_frame − 1024 = \(limit)")
        case .storage(let error):
            ProtocolError(.storageFailed, "the event could not be stored: \(error)")
        }
    }
}
