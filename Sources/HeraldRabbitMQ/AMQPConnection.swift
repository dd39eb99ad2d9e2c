import CHeraldAMQP
import Dispatch
import Foundation
import Synchronization

/// Why an AMQP call failed: a one-line reason from rabbitmq-c or the server.
public struct AMQPError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// An error from the NUL-terminated reason a C call left in `buffer`.
    init(cBuffer buffer: [CChar]) {
        description = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One blocking AMQP 0-9-1 connection with one channel, over rabbitmq-c (`CHeraldAMQP`). Every call blocks
/// the calling thread, so it belongs on a thread of its own, never on an event loop; one thread at a time
/// uses it. After a failure the connection should be closed and made again.
///
/// Another thread may call ``interrupt()`` and read ``overdueNanoseconds`` at any time (`@unchecked
/// Sendable` for them): they are how a stop, or a watchdog, ends a call RabbitMQ never answers.
public final class AMQPConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    /// Confined to the thread that uses the connection.
    private var isOpen = false
    /// When the call in progress is past its own timeout (`DispatchTime` uptime), 0 when there is none.
    private let overdueFrom = Atomic<UInt64>(0)
    /// The `timeoutMs` it was opened with: how long an RPC waits for its reply.
    private var rpcTimeoutMs = 5000

    /// A connection not opened yet: ``open(url:heartbeatSeconds:timeoutMs:)`` connects it, and
    /// ``interrupt()`` can end that from another thread.
    public init() throws(AMQPError) {
        guard let made = herald_amqp_new() else { throw AMQPError("out of memory") }
        handle = made
    }

    /// Loads rabbitmq-c and connects to `url`, logs in and opens the channel.
    public convenience init(url: String, heartbeatSeconds: Int = 10, timeoutMs: Int = 5000) throws(AMQPError) {
        try self.init()
        try open(url: url, heartbeatSeconds: heartbeatSeconds, timeoutMs: timeoutMs)
    }

    /// Connects to `url`, logs in and opens the channel. `timeoutMs` bounds the TCP connect and each RPC.
    public func open(url: String, heartbeatSeconds: Int = 10, timeoutMs: Int = 5000) throws(AMQPError) {
        rpcTimeoutMs = timeoutMs
        guard herald_amqp_open(handle, url, Int32(heartbeatSeconds), Int32(timeoutMs)) == 0 else {
            throw AMQPError(String(cString: herald_amqp_error(handle)))
        }
        isOpen = true
    }

    deinit { herald_amqp_free(handle) }

    /// Closes the channel and the connection; later calls fail.
    public func close() {
        herald_amqp_close(handle)
        isOpen = false
    }

    /// From any thread: shuts the connection's socket down, so that the call blocked on it fails at once and
    /// every later one fails (an open still making its TCP connection fails when that ends).
    public func interrupt() {
        herald_amqp_interrupt(handle)
    }

    /// From any thread: how long the call in progress has run past its own timeout; 0 when there is none.
    /// Some of rabbitmq-c's waits have no deadline: a publish, an ack or a reject, and the request of an RPC
    /// or a heartbeat sent while waiting, wait as long as RabbitMQ does not read (as under a resource alarm).
    public var overdueNanoseconds: UInt64 {
        let from = overdueFrom.load(ordering: .relaxed)
        let now = DispatchTime.now().uptimeNanoseconds
        return from > 0 && now > from ? now - from : 0
    }

    /// Runs a call, which is overdue once it has taken longer than `allowanceMs` (its own timeout).
    private func timed<Result>(allowanceMs: Int = 0, _ call: () -> Result) -> Result {
        let from = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, allowanceMs)) * 1_000_000
        overdueFrom.store(from, ordering: .relaxed)
        defer { overdueFrom.store(0, ordering: .relaxed) }
        return call()
    }

    /// An RPC: overdue once its reply is.
    private func rpc(_ call: () -> Int32) -> Int32 {
        timed(allowanceMs: rpcTimeoutMs, call)
    }

    private func check(_ status: Int32) throws(AMQPError) {
        guard status < 0 else { return }
        throw lastError
    }

    private var lastError: AMQPError {
        guard isOpen else { return AMQPError("the connection is closed") }
        return AMQPError(String(cString: herald_amqp_error(handle)))
    }

    private func connection() throws(AMQPError) -> OpaquePointer {
        guard isOpen else { throw AMQPError("the connection is closed") }
        return handle
    }

    /// A queue or exchange argument (`x-queue-type`, `x-delivery-limit`, …).
    public enum Argument: Sendable {
        case string(String, String)
        case integer(String, Int64)
        case boolean(String, Bool)
    }

    private func withArguments<Result>(
        _ arguments: [Argument], _ body: (UnsafePointer<herald_amqp_argument>?, Int) -> Result
    ) -> Result {
        // The C strings live as long as the call: strdup'd here, freed after.
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        let converted = arguments.map { argument -> herald_amqp_argument in
            switch argument {
            case .string(let name, let value):
                let cName = strdup(name)!
                let cValue = strdup(value)!
                owned += [cName, cValue]
                return herald_amqp_argument(name: cName, string: cValue, integer: 0, is_boolean: 0)
            case .integer(let name, let value):
                let cName = strdup(name)!
                owned.append(cName)
                return herald_amqp_argument(name: cName, string: nil, integer: value, is_boolean: 0)
            case .boolean(let name, let value):
                let cName = strdup(name)!
                owned.append(cName)
                return herald_amqp_argument(name: cName, string: nil, integer: value ? 1 : 0, is_boolean: 1)
            }
        }
        return converted.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
    }

    /// Declares a durable exchange of `type` (`topic`, `fanout`, `x-consistent-hash`, …).
    public func declareExchange(_ name: String, type: String, arguments: [Argument] = []) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { withArguments(arguments) { herald_amqp_declare_exchange(handle, name, type, $0, $1) } })
    }

    /// Declares a durable queue (`passive` only checks that it exists) and returns the messages ready in it.
    @discardableResult
    public func declareQueue(_ name: String, passive: Bool = false, arguments: [Argument] = []) throws(AMQPError)
        -> UInt32
    {
        let handle = try connection()
        var ready: UInt32 = 0
        try check(
            rpc {
                withArguments(arguments) { herald_amqp_declare_queue(handle, name, passive ? 1 : 0, $0, $1, &ready) }
            })
        return ready
    }

    public func bindQueue(_ queue: String, to exchange: String, key: String) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_bind_queue(handle, queue, exchange, key) })
    }

    /// Routes what `source` routes with `key` to the exchange `destination` too.
    public func bindExchange(_ destination: String, to source: String, key: String) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_bind_exchange(handle, destination, source, key) })
    }

    public func deleteQueue(_ queue: String) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_delete_queue(handle, queue) })
    }

    public func deleteExchange(_ exchange: String) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_delete_exchange(handle, exchange) })
    }

    /// Publisher confirms from now on: the n-th publish after this has delivery tag n.
    public func selectConfirms() throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_confirm_select(handle) })
    }

    /// What a message carries besides its body and routing key.
    public struct Properties: Sendable {
        public var messageID: String?
        public var type: String?
        public var appID: String?
        public var timestampMs: Int64 = 0
        public var headers: [(String, String)] = []

        public init(
            messageID: String? = nil, type: String? = nil, appID: String? = nil, timestampMs: Int64 = 0,
            headers: [(String, String)] = []
        ) {
            self.messageID = messageID
            self.type = type
            self.appID = appID
            self.timestampMs = timestampMs
            self.headers = headers
        }
    }

    /// Publishes a persistent JSON message.
    public func publish(
        exchange: String, routingKey: String, body: [UInt8], properties: Properties = Properties()
    ) throws(AMQPError) {
        let handle = try connection()
        var owned: [UnsafeMutablePointer<CChar>?] = []
        defer { owned.forEach { free($0) } }
        func c(_ text: String?) -> UnsafePointer<CChar>? {
            guard let text else { return nil }
            let copy = strdup(text)
            owned.append(copy)
            return UnsafePointer(copy)
        }
        let names = properties.headers.map { c($0.0) }
        let values = properties.headers.map { c($0.1) }
        let status = names.withUnsafeBufferPointer { names in
            values.withUnsafeBufferPointer { values in
                var cProperties = herald_amqp_properties(
                    message_id: c(properties.messageID), type: c(properties.type), app_id: c(properties.appID),
                    timestamp_ms: properties.timestampMs, header_names: names.baseAddress,
                    header_values: values.baseAddress, header_count: properties.headers.count)
                return body.withUnsafeBytes { bytes in
                    timed {
                        herald_amqp_publish(
                            handle, exchange, routingKey, bytes.baseAddress, bytes.count, &cProperties)
                    }
                }
            }
        }
        try check(status)
    }

    /// A publisher confirm for `tag` (or every tag up to it, when `multiple`).
    public struct Confirm: Sendable, Equatable {
        public let tag: UInt64
        public let multiple: Bool
        /// `false`: RabbitMQ could not take the message (a nack).
        public let ack: Bool
    }

    /// The next publisher confirm, or `nil` after `timeoutMs` without one. Heartbeats are kept meanwhile.
    public func nextConfirm(timeoutMs: Int) throws(AMQPError) -> Confirm? {
        var confirm = herald_amqp_confirm()
        let handle = try connection()
        // Beyond its wait: a heartbeat it sends, or a returned message it reads, has no deadline of its own.
        let status = timed(allowanceMs: timeoutMs + rpcTimeoutMs) {
            herald_amqp_wait_confirm(handle, Int32(timeoutMs), &confirm)
        }
        try check(status)
        guard status == 1 else { return nil }
        return Confirm(tag: confirm.tag, multiple: confirm.multiple != 0, ack: confirm.ack != 0)
    }

    /// Messages handed over before the first is acknowledged, for consumers started after this.
    public func setPrefetch(_ count: Int) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_qos(handle, UInt16(clamping: count)) })
    }

    /// Consumes `queue` with manual acknowledgements; the consumer tag is the queue's name.
    public func consume(_ queue: String) throws(AMQPError) {
        let handle = try connection()
        try check(rpc { herald_amqp_consume(handle, queue) })
    }

    /// A consumed message.
    public struct Message: Sendable {
        public let deliveryTag: UInt64
        public let redelivered: Bool
        public let body: [UInt8]
        public let routingKey: String
        /// The queue it came from (the consumer tag is the queue's name).
        public let queue: String
        public let messageID: String
        public let appID: String
        /// 2 for a persistent message.
        public let deliveryMode: UInt8
        /// The `chain_id` header, empty when absent.
        public let chainIDHeader: String
    }

    /// The next message of any consumed queue, or `nil` after `timeoutMs` without one.
    public func nextMessage(timeoutMs: Int) throws(AMQPError) -> Message? {
        var raw = herald_amqp_message()
        let handle = try connection()
        // The wait bounds a message's first frame; its body is read without a deadline (a large one on a slow
        // link takes a while), as is a heartbeat sent meanwhile.
        let status = timed(allowanceMs: timeoutMs + rpcTimeoutMs) {
            herald_amqp_next_message(handle, Int32(timeoutMs), &raw)
        }
        try check(status)
        guard status == 1 else { return nil }
        defer { herald_amqp_message_free(&raw) }
        let body = [UInt8](UnsafeRawBufferPointer(start: raw.body, count: raw.length))
        return Message(
            deliveryTag: raw.delivery_tag, redelivered: raw.redelivered != 0, body: body,
            routingKey: Self.text(&raw.routing_key), queue: Self.text(&raw.consumer_tag),
            messageID: Self.text(&raw.message_id), appID: Self.text(&raw.app_id), deliveryMode: raw.delivery_mode,
            chainIDHeader: Self.text(&raw.chain_id_header))
    }

    private static func text<Tuple>(_ tuple: inout Tuple) -> String {
        withUnsafeBytes(of: &tuple) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    public func ack(_ deliveryTag: UInt64, multiple: Bool = false) throws(AMQPError) {
        let handle = try connection()
        try check(timed { herald_amqp_ack(handle, deliveryTag, multiple ? 1 : 0) })
    }

    /// Rejects a message; without `requeue` it goes to the queue's dead-letter exchange, or is dropped.
    public func reject(_ deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        let handle = try connection()
        try check(timed { herald_amqp_reject(handle, deliveryTag, requeue ? 1 : 0) })
    }
}
