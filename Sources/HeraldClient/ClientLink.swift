import HeraldProtocol
import NIOCore
import Synchronization

/// One connection to the broker: its channel, the requests waiting for their reply, which broker
/// subscription is which of the client's, and the bytes waiting to be flushed.
///
/// Writes are coalesced: everything sent before the channel's event loop gets to run goes out in one write
/// and one flush, so a burst of publishes costs one system call, not one each.
final class ClientLink: Sendable {
    let channel: any Channel
    private let state = Mutex(State())

    /// A request waiting for its reply; a `subscribe` also names the client subscription its `ok` binds.
    struct Pending {
        var continuation: CheckedContinuation<ServerFrame, any Error>
        var binds: UInt64?
    }

    private struct State {
        var pending: [Int64: Pending] = [:]
        var outbox: [UInt8] = []
        var flushScheduled = false
        /// The future of the last flush, for a sender that waits while the socket is full.
        var lastFlush: EventLoopFuture<Void>?
        var failure: (any Error)?
        /// Broker subscription id → client subscription id.
        var bindings: [UInt64: UInt64] = [:]
    }

    /// Unflushed bytes beyond which a sender waits for the socket.
    private static let outboxLimit = 4 << 20

    init(channel: any Channel) {
        self.channel = channel
    }

    /// Queues `bytes`; one flush, scheduled on the event loop, writes everything queued by then.
    func send(_ bytes: [UInt8]) {
        let schedule = state.withLock { state in
            state.outbox.append(contentsOf: bytes)
            defer { state.flushScheduled = true }
            return !state.flushScheduled
        }
        if schedule { channel.eventLoop.execute { self.flush() } }
    }

    /// Queues `bytes`, first waiting for the socket when much is already waiting for it.
    func sendWithBackpressure(_ bytes: [UInt8]) async throws {
        let wait = state.withLock { state -> EventLoopFuture<Void>? in
            state.outbox.count > Self.outboxLimit || !channel.isWritable ? state.lastFlush : nil
        }
        if let wait { try await wait.get() }
        if let failure = state.withLock({ $0.failure }) { throw failure }
        send(bytes)
    }

    private func flush() {
        let bytes = state.withLock { state in
            state.flushScheduled = false
            defer { state.outbox.removeAll(keepingCapacity: true) }
            return state.outbox
        }
        guard !bytes.isEmpty else { return }
        let flushed = channel.writeAndFlush(ByteBuffer(bytes: bytes))
        state.withLock { $0.lastFlush = flushed }
    }

    /// Sends a request and waits for the frame that answers it (an `ok`, `pong`, `welcome` or `error`).
    func request(id: Int64, binds: UInt64? = nil, _ bytes: [UInt8]) async throws -> ServerFrame {
        try await withCheckedThrowingContinuation { continuation in
            let failure = state.withLock { state -> (any Error)? in
                if let failure = state.failure { return failure }
                state.pending[id] = Pending(continuation: continuation, binds: binds)
                return nil
            }
            if let failure {
                continuation.resume(throwing: failure)
            } else {
                send(bytes)
            }
        }
    }

    /// The request waiting for the reply with `id`, removed.
    func takePending(_ id: Int64) -> Pending? {
        state.withLock { $0.pending.removeValue(forKey: id) }
    }

    func bind(server: UInt64, to local: UInt64) {
        state.withLock { $0.bindings[server] = local }
    }

    /// The client subscription a broker subscription delivers to.
    func local(for server: UInt64) -> UInt64? {
        state.withLock { $0.bindings[server] }
    }

    /// Forgets the binding of client subscription `local`, returning the broker's id for it.
    func unbind(local: UInt64) -> UInt64? {
        state.withLock { state in
            guard let server = state.bindings.first(where: { $0.value == local })?.key else { return nil }
            state.bindings[server] = nil
            return server
        }
    }

    /// Whether the connection failed (``fail(with:)``).
    var hasFailed: Bool { state.withLock { $0.failure != nil } }

    /// Fails every waiting request with `error`; requests made later fail at once.
    func fail(with error: any Error) {
        let pending = state.withLock { state in
            if state.failure == nil { state.failure = error }
            defer { state.pending.removeAll() }
            return state.pending.values
        }
        for request in pending { request.continuation.resume(throwing: error) }
    }
}

/// Cuts the broker's byte stream into frames and hands each to the client's reader. A length of 0 or
/// above the limit is a broken broker: the connection is closed.
final class ClientFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    private let maximumLength: Int

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        if let error = FrameLength.validate(Int(length), maximum: maximumLength) {
            throw HeraldClientError.protocolViolation(error.message)
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Hands each frame to the client's reader task, and the end of the connection (or its error) after the
/// last one. While the frames handed over and not yet taken by the reader hold ``ReadBudget/limit`` bytes or
/// more, the socket is not read: a broker sending faster than the reader parses fills its own socket buffer
/// and then waits, instead of the client's memory growing without bound.
final class FrameForwarder: ChannelDuplexHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never

    private let frames: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let budget: ReadBudget

    init(_ frames: AsyncThrowingStream<ByteBuffer, any Error>.Continuation, budget: ReadBudget) {
        self.frames = frames
        self.budget = budget
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        budget.handedOver(frame.readableBytes)
        frames.yield(frame)
    }

    func read(context: ChannelHandlerContext) {
        // Held while over the budget; the reader calls `Channel.read()` again once it has caught up.
        if budget.mayRead() { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        frames.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        frames.finish(throwing: error)
        context.close(promise: nil)
    }
}

/// The bytes of the frames between ``FrameForwarder`` and the client's reader task: at ``limit`` or more the
/// socket is not read, and reading goes on once the reader has taken them down to half of it.
final class ReadBudget: Sendable {
    private struct State {
        var waiting = 0
        var readHeld = false
    }

    let limit: Int
    private let state = Mutex(State())

    init(limit: Int = 8 << 20) {
        self.limit = limit
    }

    /// A frame of `count` bytes was handed to the reader.
    func handedOver(_ count: Int) {
        state.withLock { $0.waiting += count }
    }

    /// Whether the socket may be read now; if not, the read is held until ``taken(_:)`` says to read again.
    func mayRead() -> Bool {
        state.withLock { state in
            // Once held, held until the reader is down to half (not read again at each frame taken).
            guard state.waiting >= limit || state.readHeld else { return true }
            state.readHeld = true
            return false
        }
    }

    /// The reader took a frame of `count` bytes; `true` when a held read should now be made
    /// (`Channel.read()`).
    func taken(_ count: Int) -> Bool {
        state.withLock { state in
            state.waiting -= count
            guard state.readHeld, state.waiting <= limit / 2 else { return false }
            state.readHeld = false
            return true
        }
    }
}
