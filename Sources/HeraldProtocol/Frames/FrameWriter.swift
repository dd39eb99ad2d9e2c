import HeraldCore

/// Appends broker-to-client frames (PROTOCOL.md §2.3) to one buffer, each a 4-byte big-endian length and a
/// JSON object (or, on a WebSocket, a text frame's header and the object), so that a connection writes many
/// frames per flush.
///
/// `event` frames are spliced: a header written here, then the envelope's stored bytes, then `}`. The event
/// is never encoded again, however many subscribers receive it.
package struct FrameWriter {
    package private(set) var writer = JSONWriter(capacity: 4096)
    /// How each frame is delimited: a length prefix on the IPC socket, a text frame on a WebSocket.
    package let framing: Framing

    package init(framing: Framing = .lengthPrefixed) {
        self.framing = framing
    }

    /// The frames written so far.
    package var bytes: [UInt8] { writer.bytes }

    /// Empties the buffer, keeping its capacity (the buffer must not be shared, or it is reallocated).
    package mutating func clear() {
        writer.bytes.removeAll(keepingCapacity: true)
    }

    /// Empties the buffer, keeping its capacity, and returns what it held.
    package mutating func take() -> [UInt8] {
        let taken = writer.bytes
        writer.bytes.removeAll(keepingCapacity: true)
        return taken
    }

    /// Removes and returns the frames written after the buffer held `count` bytes.
    package mutating func take(after count: Int) -> [UInt8] {
        let taken = Array(writer.bytes[count...])
        writer.bytes.removeSubrange(count...)
        return taken
    }

    // MARK: Frames

    /// `{"op":"event","subscription":7,"seq":42,"attempt":1,"event":{…}}`, keys in exactly this order.
    package mutating func event(subscription: UInt64, seq: UInt64, attempt: Int? = nil, envelope: EventEnvelope) {
        event(subscription: subscription, seq: seq, attempt: attempt, json: envelope.json)
    }

    /// An `event` frame around a stored envelope's bytes.
    package mutating func event(subscription: UInt64, seq: UInt64, attempt: Int?, json: [UInt8]) {
        frame { writer in
            writer.append(raw: "{\"op\":\"event\",\"subscription\":")
            writer.append(integer: subscription)
            writer.append(raw: ",\"seq\":")
            writer.append(integer: seq)
            if let attempt {
                writer.append(raw: ",\"attempt\":")
                writer.append(integer: attempt)
            }
            writer.append(raw: ",\"event\":")
            writer.append(raw: json)
            writer.append(raw: "}")
        }
    }

    /// The reply to `hello`.
    package mutating func welcome(
        id: RequestID?,
        session: String,
        serverName: String,
        serverVersion: String,
        maxFrame: Int,
        heartbeatMs: Int
    ) {
        reply("welcome", id: id) { writer in
            writer.append(raw: ",\"protocol\":1,\"session\":")
            writer.append(string: session)
            writer.append(raw: ",\"server\":{\"name\":")
            writer.append(string: serverName)
            writer.append(raw: ",\"version\":")
            writer.append(string: serverVersion)
            writer.append(raw: "},\"max_frame\":")
            writer.append(integer: maxFrame)
            writer.append(raw: ",\"heartbeat_ms\":")
            writer.append(integer: heartbeatMs)
        }
    }

    /// A plain `ok`.
    package mutating func ok(id: RequestID?) {
        reply("ok", id: id) { _ in }
    }

    /// The `ok` to `subscribe`.
    package mutating func ok(id: RequestID?, subscription: UInt64) {
        reply("ok", id: id) { writer in
            writer.append(raw: ",\"subscription\":")
            writer.append(integer: subscription)
        }
    }

    /// The `ok` to a publish with `id`: `offset` and `partition` only when the event was stored.
    package mutating func ok(id: RequestID?, eventID: String, duplicate: Bool, offset: Int64?, partition: Int?) {
        reply("ok", id: id) { writer in
            writer.append(raw: ",\"event_id\":")
            writer.append(string: eventID)
            writer.append(raw: duplicate ? ",\"duplicate\":true" : ",\"duplicate\":false")
            if let offset, let partition {
                writer.append(raw: ",\"offset\":")
                writer.append(integer: offset)
                writer.append(raw: ",\"partition\":")
                writer.append(integer: partition)
            }
        }
    }

    /// The `ok` to `stats`: modules in name order.
    package mutating func ok(id: RequestID?, stats: [String: DeliveryStatistics]) {
        reply("ok", id: id) { writer in
            writer.append(raw: ",\"stats\":")
            writer.append(statistics: stats)
        }
    }

    /// The `ok` to `subscribers`, names sorted.
    package mutating func ok(id: RequestID?, subscribers: [String]) {
        reply("ok", id: id) { writer in
            writer.append(raw: ",\"subscribers\":[")
            for (index, name) in subscribers.sorted().enumerated() {
                if index > 0 { writer.append(raw: ",") }
                writer.append(string: name)
            }
            writer.append(raw: "]")
        }
    }

    /// The answer to a client's `ping`.
    package mutating func pong(id: RequestID?) {
        reply("pong", id: id) { _ in }
    }

    /// The broker's heartbeat to a silent connection.
    package mutating func ping() {
        reply("ping", id: nil) { _ in }
    }

    /// `{"op":"error","id":4,"code":"invalid_event","message":"…"}`, plus `event_id` for a failed publish
    /// sent without `id`.
    package mutating func error(_ error: ProtocolError) {
        reply("error", id: error.requestID) { writer in
            writer.append(raw: ",\"code\":")
            writer.append(string: error.code.description)
            writer.append(raw: ",\"message\":")
            writer.append(string: error.message)
            if let eventID = error.eventID {
                writer.append(raw: ",\"event_id\":")
                writer.append(string: eventID)
            }
        }
    }

    /// `{"op":"<op>"` and the `id`, then `fields`, then `}`, as one frame.
    private mutating func reply(_ op: StaticString, id: RequestID?, fields: (inout JSONWriter) -> Void) {
        writer.frame(framing, op: op, id: id, fields: fields)
    }

    private mutating func frame(_ body: (inout JSONWriter) -> Void) {
        writer.frame(framing, body)
    }
}
