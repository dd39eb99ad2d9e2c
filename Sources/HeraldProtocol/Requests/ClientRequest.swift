import HeraldCore

/// One client-to-broker frame, parsed and validated (PROTOCOL.md §2.2).
package struct ClientRequest: Sendable {
    /// Most topic patterns one `subscribe` may carry.
    package static let maximumTopics = 64

    /// The request's `id`, echoed in every reply to it.
    package var id: RequestID?
    package var operation: Operation

    package enum Operation: Sendable {
        case hello(Hello)
        case subscribe(Subscribe)
        case unsubscribe(subscription: UInt64)
        /// The envelope as published, validated but not sealed: the broker applies its defaults, producer,
        /// offset and partition when it accepts the event.
        case publish(EnvelopeFields)
        case ready
        case ack(subscription: UInt64, seqs: [UInt64])
        case nack(Nack)
        case stats(module: String?)
        case subscribers(eventType: String)
        case ping
        case pong
        case bye
    }

    /// `hello`: the handshake.
    package struct Hello: Sendable, Equatable {
        package var moduleName: String
        package var moduleVersion: String
        package var instance: String?
        package var token: String?
    }

    /// `subscribe`: live (no `group`) or durable (`group` set).
    package struct Subscribe: Sendable, Equatable {
        package var topics: [TopicPattern]
        package var buffer: Int?
        package var overflow: OverflowPolicy?
        package var group: String?
        package var from: StartPosition?
        package var maxInFlight: Int?
        package var ackWaitMs: Int?
    }

    /// Where a new consumer group starts reading (PROTOCOL.md §4.2).
    package enum StartPosition: Sendable, Equatable {
        case latest
        case earliest
        /// Inclusive.
        case offset(Int64)
        /// The first event with a timestamp at or after this many milliseconds since the epoch.
        case time(millisecondsSinceEpoch: Int64)
    }

    /// `nack`: redeliver one event later, or send it to the dead-letter queue.
    package struct Nack: Sendable, Equatable {
        package var subscription: UInt64
        package var seq: UInt64
        package var delayMs: Int64?
        package var deadLetter: Bool
    }
}
