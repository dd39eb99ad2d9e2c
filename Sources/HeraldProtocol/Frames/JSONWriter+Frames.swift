import HeraldCore

/// Framing shared by both directions (PROTOCOL.md §2.1): a 4-byte big-endian length, then one JSON object.
extension JSONWriter {
    /// Reserves the 4-byte length, writes the body, then fills the length in, big-endian.
    package mutating func frame(_ body: (inout JSONWriter) -> Void) {
        let start = bytes.count
        append(raw: [0, 0, 0, 0])
        body(&self)
        FrameLength.write(bytes.count - start - 4, into: &bytes, at: start)
    }

    /// One frame holding `{"op":"<op>"`, the `id` when there is one, then `fields`, then `}`.
    package mutating func frame(op: StaticString, id: RequestID?, fields: (inout JSONWriter) -> Void) {
        frame { writer in
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
