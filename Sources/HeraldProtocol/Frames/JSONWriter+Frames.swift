import HeraldCore

/// How frames are delimited on a connection: the IPC socket's 4-byte big-endian length (PROTOCOL.md §2.1),
/// or a WebSocket text frame from the server (RFC 6455 §5.2: unmasked, one JSON object per message, §7).
package enum Framing: Sendable {
    case lengthPrefixed
    case webSocket
}

/// Framing shared by both directions (PROTOCOL.md §2.1): a 4-byte big-endian length, then one JSON object.
extension JSONWriter {
    /// Reserves the 4-byte length, writes the body, then fills the length in, big-endian.
    package mutating func frame(_ body: (inout JSONWriter) -> Void) {
        frame(.lengthPrefixed, body)
    }

    /// Writes the body as one frame of `framing`. Both headers start as 4 reserved bytes, which is exactly a
    /// WebSocket header for 126 to 65 535 bytes (every delivered event of usual size); a shorter or longer
    /// WebSocket message moves its body by the difference.
    package mutating func frame(_ framing: Framing, _ body: (inout JSONWriter) -> Void) {
        let start = bytes.count
        append(raw: [0, 0, 0, 0])
        body(&self)
        let length = bytes.count - start - 4
        switch framing {
        case .lengthPrefixed:
            FrameLength.write(length, into: &bytes, at: start)
        case .webSocket:
            WebSocketHeader.write(length, into: &bytes, reservedAt: start)
        }
    }

    /// One frame holding `{"op":"<op>"`, the `id` when there is one, then `fields`, then `}`.
    package mutating func frame(op: StaticString, id: RequestID?, fields: (inout JSONWriter) -> Void) {
        frame(.lengthPrefixed, op: op, id: id, fields: fields)
    }

    /// One frame of `framing` holding `{"op":"<op>"`, the `id` when there is one, then `fields`, then `}`.
    package mutating func frame(
        _ framing: Framing, op: StaticString, id: RequestID?, fields: (inout JSONWriter) -> Void
    ) {
        frame(framing) { writer in
            writer.append(raw: "{\"op\":\"")
            writer.append(raw: op)
            writer.append(raw: "\"")
            switch id {
            case .integer(let value)?:
                writer.append(raw: ",\"id\":")
                writer.append(integer: value)
            case .string(let value)?:
                writer.append(raw: ",\"id\":")
                writer.append(string: value)
            case nil: break
            }
            fields(&writer)
            writer.append(raw: "}")
        }
    }
}

extension JSONWriter {
    /// Statistics per module as PROTOCOL.md §5 writes them, modules in name order:
    /// `{"indexer":{"successful":1200,"failed":0,"channel_full":37}}`.
    package mutating func append(statistics: [String: DeliveryStatistics]) {
        append(raw: "{")
        for (index, name) in statistics.keys.sorted().enumerated() {
            let counts = statistics[name]!
            if index > 0 { append(raw: ",") }
            append(string: name)
            append(raw: ":{\"successful\":")
            append(integer: counts.successful)
            append(raw: ",\"failed\":")
            append(integer: counts.failed)
            append(raw: ",\"channel_full\":")
            append(integer: counts.channelFull)
            append(raw: "}")
        }
        append(raw: "}")
    }
}
