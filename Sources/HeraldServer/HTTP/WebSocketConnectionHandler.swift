import HeraldCore
import HeraldProtocol
import NIOCore
import NIOWebSocket

/// One WebSocket client (PROTOCOL.md §7), served on its channel's event loop like an IPC connection: each
/// text message is one frame of the IPC protocol, handed to a ``BrokerConnection`` whose session needs no
/// `hello` (the upgrade authenticated the client) and writes WebSocket text frames. Deliveries are written
/// by the same pumps as on the IPC socket, many messages per write, as bytes that pass the frame encoder by.
///
/// - The query's `topics` are subscribed when the handler is added, before any message is read.
/// - A message arriving in fragments is put together (at most `ipc.max_frame` bytes: a longer one closes the
///   socket with 1009); a binary message is answered with `bad_frame`; a frame that is not masked closes
///   it with 1002 (RFC 6455 §5.1).
/// - Pings are answered with pongs; a `close` is answered with a `close` and the socket closed.
/// - Liveness: a ping frame after a heartbeat (`ipc.heartbeat_ms`) of silence, and the socket closed after
///   three heartbeats of silence, at least two of them after the first ping (the IPC socket's rule, §2.3),
///   with a `close` 1008 saying so when the socket still takes it.
final class WebSocketConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    /// Fired through the pipeline when the gateway stops: the client is told with `close` 1001.
    struct GoingAway {}

    private let broker: Broker
    private let request: HTTPGateway.WebSocketRequest
    private let connections: OpenConnections
    private let maxFrame: Int
    private var connection: BrokerConnection?
    /// A text or binary message whose final fragment has not come yet.
    private var message: (isText: Bool, bytes: ByteBuffer)?
    /// The pong for the latest ping, waiting for the socket to be writable (``channelRead(context:data:)``).
    private var pendingPong: [UInt8]?
    /// The next heartbeat check.
    private var heartbeat: Scheduled<Void>?
    private var liveness: Heartbeat

    init(broker: Broker, request: HTTPGateway.WebSocketRequest, connections: OpenConnections) {
        self.broker = broker
        self.request = request
        self.connections = connections
        liveness = Heartbeat(interval: .milliseconds(Int64(broker.configuration.ipc.heartbeatMs)), now: .now())
        self.maxFrame = broker.configuration.ipc.maxFrame
    }

    /// Added by the upgrade to an active channel, after the frame encoder and decoder.
    func handlerAdded(context: ChannelHandlerContext) {
        // Frames go out as bytes through the encoder's context, which hands them to the socket unchanged.
        guard let output = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        else {
            context.close(promise: nil)
            return
        }
        broker.metrics.connection(.websocket, 1)
        connections.add(context.channel)
        // Its statistics (`ws:<token name>`) run from its first socket, as a module's from its first hello.
        broker.bus.noteSubscriber(request.principal.name)
        let connection = BrokerConnection(
            session: IPCSession(broker: broker, greeted: request.principal), broker: broker, output: output,
            goodbye: WebSocketHeader.close(code: 1000, reason: "bye"))
        self.connection = connection
        liveness.heard(at: .now())
        scheduleBeat(at: .now() + liveness.interval, on: context.eventLoop)
        if !request.topics.isEmpty { connection.handle([.frame(ByteBuffer(bytes: request.subscribeFrame))]) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        end(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(context: context)
        context.fireChannelInactive()
    }

    private func end(context: ChannelHandlerContext) {
        guard let connection else { return }
        self.connection = nil
        heartbeat?.cancel()
        heartbeat = nil
        connection.end()
        connections.remove(context.channel)
        broker.metrics.connection(.websocket, -1)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection, !connection.isClosing else { return }
        liveness.heard(at: .now())
        let frame = unwrapInboundIn(data)
        // RFC 6455 §5.1: a server closes the connection on a frame from the client that is not masked;
        // §5.2: and on reserved bits set, since no extension was negotiated.
        guard frame.maskKey != nil else { return fail(1002, "frames from a client must be masked") }
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else { return fail(1002, "no extension was negotiated") }
        switch frame.opcode {
        case .text, .binary:
            guard message == nil else { return fail(1002, "a new message began before the last one ended") }
            message = (frame.opcode == .text, frame.unmaskedData)
        case .continuation:
            guard message != nil else { return fail(1002, "a continuation frame with no message to continue") }
            var data = frame.unmaskedData
            message!.bytes.writeBuffer(&data)
        case .ping:
            // RFC 6455 §5.5.3: an endpoint that has not yet answered earlier pings may answer only the most
            // recent one. While the socket is full (its client does not read), the pong waits, replaced by each
            // later ping's, and goes once the socket is writable: a client that floods pings without reading
            // holds one pong in the broker, not one per ping (a review saw 170 MiB held for one client).
            let pong = WebSocketHeader.control(.pong, payload: frame.unmaskedData.readableBytesView)
            if context.channel.isWritable {
                connection.write(pong)
            } else {
                pendingPong = pong
            }
            return
        case .pong:
            return
        case .connectionClose:
            // Echo a valid status code (RFC 6455 §5.5.1, §7.4), then close.
            let payload = frame.unmaskedData
            guard payload.readableBytes != 1 else { return fail(1002, "a close frame's code is two bytes") }
            let code = payload.getInteger(at: payload.readerIndex, as: UInt16.self)
            if let code, !Self.isValidCloseCode(code) { return fail(1002, "close code \(code) may not be sent") }
            // §8.1: a reason that is not UTF-8 fails the connection with 1007.
            if payload.readableBytes > 2,
                String(validating: payload.readableBytesView.dropFirst(2), as: UTF8.self) == nil
            {
                return fail(1007, "a close reason must be UTF-8")
            }
            connection.close(
                with: WebSocketHeader.control(.close, payload: code.map { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } ?? []))
            return
        default:
            return fail(1002, "unknown opcode")
        }
        guard let (isText, bytes) = message else { return }
        guard bytes.readableBytes <= maxFrame else {
            return fail(1009, "a message is at most ipc.max_frame = \(maxFrame) bytes")
        }
        guard frame.fin else { return }
        message = nil
        guard isText else {
            var error = FrameWriter(framing: .webSocket)
            error.error(ProtocolError(.badFrame, "messages are text frames holding one JSON object"))
            connection.write(error.bytes)
            return
        }
        connection.handle([.frame(bytes)])
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let pong = pendingPong, let connection {
            pendingPong = nil
            // Nothing follows a close frame (RFC 6455 §5.5.1).
            if !connection.isClosing { connection.write(pong) }
        }
        connection?.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    /// The client closed its side (the gateway's channels allow half-closure), or the gateway stops.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GoingAway {
            fail(1001, "the broker is shutting down")
        } else if case .inputClosed? = event as? ChannelEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// A frame the decoder refused (too large, a malformed control frame): `close` with the RFC's code.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error as? NIOWebSocketError {
        case .invalidFrameLength?: fail(1009, "a frame is at most ipc.max_frame = \(maxFrame) bytes")
        case .some: fail(1002, "\(error)")
        case nil:
            broker.logger.debug("websocket connection error", metadata: ["ws.error": "\(error)"])
            context.close(promise: nil)
        }
    }

    /// Sends `close` with `code` and `reason`, and closes the socket.
    private func fail(_ code: UInt16, _ reason: String) {
        guard let connection, !connection.isClosing else { return }
        connection.close(with: WebSocketHeader.close(code: code, reason: reason))
    }

    /// Codes a peer may send in a `close` (RFC 6455 §7.4): the defined ones but 1004–1006 and 1015, and
    /// 3000–4999 for libraries and applications.
    private static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    private func beat(on loop: any EventLoop) {
        guard let connection else { return }
        let now = NIODeadline.now()
        // Not reading is the broker's doing while paused for the log, and a client taking the replies it had
        // left unread is alive: either way its pongs wait unread.
        if connection.isReadingPaused || connection.repliesAreDraining() { liveness.heard(at: now) }
        let (verdict, next) = liveness.check(at: now)
        switch verdict {
        case .alive:
            break
        case .ping:
            connection.write(WebSocketHeader.control(.ping, payload: []))
        case .dead:
            // Told why (1008: the broker's rule that pings are answered), if the socket takes it, then closed
            // without waiting: a client that does not answer may not read either.
            let silence = (liveness.interval * 3).nanoseconds / 1_000_000
            connection.write(WebSocketHeader.close(code: 1008, reason: "no reply to pings for \(silence) ms"))
            connection.closeNow()
            return
        }
        scheduleBeat(at: next, on: loop)
    }

    private func scheduleBeat(at deadline: NIODeadline, on loop: any EventLoop) {
        // Not after the connection ended (a ping whose write found the socket closed ends it on the way).
        guard connection != nil else { return }
        let handler = NIOLoopBound(self, eventLoop: loop)
        heartbeat = loop.scheduleTask(deadline: deadline) { handler.value.beat(on: loop) }
    }
}
