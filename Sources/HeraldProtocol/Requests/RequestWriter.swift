import HeraldCore

/// Appends client-to-broker frames (PROTOCOL.md §2.2) to one buffer, so that a client writes many requests
/// per flush. A `publish` splices the envelope's stored bytes: the event is not encoded again.
package struct RequestWriter {
    package private(set) var writer = JSONWriter(capacity: 4096)

    package init() {}

    /// The frames written so far.
    package var bytes: [UInt8] { writer.bytes }

    /// Empties the buffer, keeping its capacity, and returns what it held.
    package mutating func take() -> [UInt8] {
        let taken = writer.bytes
        writer.bytes.removeAll(keepingCapacity: true)
        return taken
    }

    package mutating func hello(id: RequestID?, module: String, version: String, instance: String?, token: String?) {
        writer.frame(op: "hello", id: id) { writer in
            writer.append(raw: ",\"protocol\":1,\"module\":{\"name\":")
            writer.append(string: module)
            writer.append(raw: ",\"version\":")
            writer.append(string: version)
            if let instance {
                writer.append(raw: ",\"instance\":")
                writer.append(string: instance)
            }
            writer.append(raw: "}")
            if let token {
                writer.append(raw: ",\"token\":")
                writer.append(string: token)
            }
        }
    }

    /// A live subscription; `buffer` and `overflow` are left to the broker's defaults when `nil`.
    package mutating func subscribe(id: RequestID?, topics: [String], buffer: Int?, overflow: OverflowPolicy?) {
        writer.frame(op: "subscribe", id: id) { writer in
            Self.appendTopics(topics, to: &writer)
            if let buffer {
                writer.append(raw: ",\"buffer\":")
                writer.append(integer: buffer)
            }
            if let overflow {
                writer.append(raw: ",\"overflow\":")
                writer.append(string: overflow.description)
            }
        }
    }

    /// A durable `subscribe` (PROTOCOL.md §4.2).
    package mutating func subscribe(
        id: RequestID?, topics: [String], group: String, from: String?, maxInFlight: Int?, ackWaitMs: Int?
    ) {
        writer.frame(op: "subscribe", id: id) { writer in
            Self.appendTopics(topics, to: &writer)
            writer.append(raw: ",\"group\":")
            writer.append(string: group)
            if let from {
                writer.append(raw: ",\"from\":")
                writer.append(raw: from.utf8)
            }
            if let maxInFlight {
                writer.append(raw: ",\"max_in_flight\":")
                writer.append(integer: maxInFlight)
            }
            if let ackWaitMs {
                writer.append(raw: ",\"ack_wait_ms\":")
                writer.append(integer: ackWaitMs)
            }
        }
    }

    /// `,"topics":[…]`, shared by both kinds of `subscribe`.
    private static func appendTopics(_ topics: [String], to writer: inout JSONWriter) {
        writer.append(raw: ",\"topics\":[")
        for (index, topic) in topics.enumerated() {
            if index > 0 { writer.append(raw: ",") }
            writer.append(string: topic)
        }
        writer.append(raw: "]")
    }

    package mutating func ack(id: RequestID?, subscription: UInt64, seqs: [UInt64]) {
        writer.frame(op: "ack", id: id) { writer in
            writer.append(raw: ",\"subscription\":")
            writer.append(integer: subscription)
            writer.append(raw: ",\"seq\":[")
            for (index, seq) in seqs.enumerated() {
                if index > 0 { writer.append(raw: ",") }
                writer.append(integer: seq)
            }
            writer.append(raw: "]")
        }
    }

    package mutating func nack(id: RequestID?, subscription: UInt64, seq: UInt64, delayMs: Int64?, deadLetter: Bool) {
        writer.frame(op: "nack", id: id) { writer in
            writer.append(raw: ",\"subscription\":")
            writer.append(integer: subscription)
            writer.append(raw: ",\"seq\":")
            writer.append(integer: seq)
            if let delayMs {
                writer.append(raw: ",\"delay_ms\":")
                writer.append(integer: delayMs)
            }
            if deadLetter { writer.append(raw: ",\"dead_letter\":true") }
        }
    }

    package mutating func unsubscribe(id: RequestID?, subscription: UInt64) {
        writer.frame(op: "unsubscribe", id: id) { writer in
            writer.append(raw: ",\"subscription\":")
            writer.append(integer: subscription)
        }
    }

    /// `{"op":"publish","id":…,"event":{…}}`; without `id` the broker answers only a failure.
    package mutating func publish(id: RequestID?, envelope: EventEnvelope) {
        writer.frame(op: "publish", id: id) { writer in
            writer.append(raw: ",\"event\":")
            writer.append(raw: envelope.json)
        }
    }

    package mutating func ready(id: RequestID?) {
        writer.frame(op: "ready", id: id) { _ in }
    }

    package mutating func stats(id: RequestID?, module: String?) {
        writer.frame(op: "stats", id: id) { writer in
            if let module {
                writer.append(raw: ",\"module\":")
                writer.append(string: module)
            }
        }
    }

    package mutating func subscribers(id: RequestID?, eventType: String) {
        writer.frame(op: "subscribers", id: id) { writer in
            writer.append(raw: ",\"event_type\":")
            writer.append(string: eventType)
        }
    }

    package mutating func ping(id: RequestID?) {
        writer.frame(op: "ping", id: id) { _ in }
    }

    /// The answer to the broker's heartbeat `ping`.
    package mutating func pong() {
        writer.frame(op: "pong", id: nil) { _ in }
    }

    package mutating func bye(id: RequestID?) {
        writer.frame(op: "bye", id: id) { _ in }
    }
}
