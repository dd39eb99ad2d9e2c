import Foundation
import HeraldCore
import Testing

@testable import HeraldServer

/// Events a bridge brings in (`Broker.acceptBridged`), without RabbitMQ: RabbitMQBridgeTests runs the bridge.
@Suite(.timeLimit(.minutes(3)))
struct BridgedEventTests {
    /// The sending broker's id, as long as one may be.
    private static let origin = String(repeating: "a", count: 64)

    private static func fields(_ id: String, payloadBytes: Int) throws -> EnvelopeFields {
        let json =
            #"{"event_type":"bridge.test","event_id":"\#(id)","payload":""#
            + String(repeating: "x", count: payloadBytes) + #"","metadata":{"origin":"\#(origin)"}}"#
        return try Array(json.utf8).withUnsafeBufferPointer { try EnvelopeFields(parsing: $0, form: .published) }
    }

    private static func bridged(_ broker: TestBroker, _ fields: EnvelopeFields) async -> BridgedOutcome {
        await withCheckedContinuation { continuation in
            broker.broker.acceptBridged(fields) { continuation.resume(returning: $0) }
        }
    }

    /// An event that fitted on its broker fits here too, with the `origin` that broker added: the same
    /// `max_frame` on both would otherwise refuse, and lose, the events nearest the limit.
    @Test func anEventThatFittedWhereItCameFromFitsWithItsOrigin() async throws {
        let broker = try await TestBroker.start(durable: true) { $0.ipc.maxFrame = 4096 }
        // The smallest payload a publish of the same envelope (origin included) is refused at.
        var refusedAt = 2_800
        let principal = Principal(name: Broker.bridgeProducer, permissions: nil)
        while true {
            let admitted = try broker.broker.admit(
                try Self.fields("p\(refusedAt)", payloadBytes: refusedAt), from: principal)
            do {
                _ = try broker.broker.accept(admitted, confirming: nil)
            } catch {
                #expect(error.message.contains("more than max_frame − 1024"))
                break
            }
            refusedAt += 1
            try #require(refusedAt < 3_100)
        }
        #expect(await Self.bridged(broker, try Self.fields("b\(refusedAt)", payloadBytes: refusedAt)) == .stored)
        // The allowance is what an origin can add, no more: past it, refused as anything too large is. (Ids of
        // the same length as the probe's, and a few bytes for the offset's digits.)
        let past = await Self.bridged(
            broker, try Self.fields("c\(refusedAt)", payloadBytes: refusedAt + Broker.bridgedOriginAllowance + 4))
        guard case .refused(let reason) = past else {
            Issue.record("an envelope past the allowance was \(past)")
            return
        }
        #expect(reason.contains("more than max_frame − 1024"))
        try await broker.stop()
    }
}
