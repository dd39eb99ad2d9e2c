import HeraldCore
import HeraldLog
import HeraldProtocol
import NIOCore

/// What every client connection shares, whatever carries its frames — the IPC socket
/// (``IPCConnectionHandler``) or a WebSocket (``WebSocketConnectionHandler``): its ``IPCSession``, the pumps
/// that deliver its subscriptions on the connection's event loop, and the writes of its replies. The
/// transport's handler reads and unwraps the client's frames, hands them here, and keeps its own liveness
/// rule; everything here runs on the connection's event loop.
final class BrokerConnection {
    let broker: Broker
    private(set) var session: IPCSession
    /// Where the connection's bytes go: a context whose next outbound handler takes whole frames as bytes
    /// (the IPC handler's own; on a WebSocket, the frame encoder's, so that frames written here as bytes
    /// pass it by).
    let output: ChannelHandlerContext
    private var pumps: [DeliveryPump] = []
    private var groupPumps: [GroupDeliveryPump] = []
    /// Pumps that stopped because the connection was not writable.
    private var waitingForWritable: [any ConnectionPump] = []
    /// Set once the connection is being closed: what it still reads is ignored.
    private(set) var isClosing = false
    /// Written last when the broker closes the connection (a WebSocket's `close` 1000).
    private let goodbye: [UInt8]?
    /// Where the connection's pumps are woken: shared by every connection on its event loop.
    let wakeups: PumpWakeups

    init(session: IPCSession, broker: Broker, output: ChannelHandlerContext, goodbye: [UInt8]? = nil) {
        self.goodbye = goodbye
        self.broker = broker
        self.session = session
        self.output = output
        self.wakeups = broker.pumpWakeups.wakeups(for: output.eventLoop)
        let outbox = Outbox(context: output, order: self.session.order)
        self.session.sendLater = { bytes, slot in outbox.send(bytes, into: slot) }
    }

    /// How this connection delimits its frames.
    var framing: Framing { session.replies.framing }

    /// The connection is being closed for heartbeats of silence: its module, if this was its last
    /// connection, is hung (``ModuleSupervisor/disconnected(_:unloaded:saidBye:unresponsive:)``).
    func closingForSilence() {
        session.closedForSilence = true
    }

    /// The module's name once it said hello, when the connection is a module's.
    var moduleName: String? { session.moduleName }

    /// Handles the frames one read brought and writes all their replies at once; then starts delivering new
    /// subscriptions (after their `ok`, so that no event of a subscription precedes it) and stops the ended
    /// ones. Closes the connection, after the replies, when a frame asked for that. Replies held behind one
    /// still to come (``ReplyOrder``) go out later, and what must follow them waits with them: the start of
    /// deliveries, and the close — after a `bye` the broker still sends what it owes.
    func handle(_ frames: [InboundFrame]) {
        guard !isClosing, !isClosingAfterReplies else { return }
        let keepOpen = WakeupsHeldForARead.holding { session.handle(frames) }
        if closableAs == nil, session.isModule, let module = session.moduleName {
            // The supervisor closes a module's every connection when it stops the module.
            closableAs = module
            let channel = output.channel
            broker.modules.keepCloser(of: ObjectIdentifier(self), module: module) { channel.close(promise: nil) }
        }
        if !session.replies.bytes.isEmpty {
            noteReplyWrite()
            output.write(NIOAny(ByteBuffer(bytes: session.replies.bytes)), promise: nil)
            session.replies.clear()
        }
        output.flush()
        let subscriptions = session.pendingDeliveries
        let memberships = session.pendingGroupDeliveries
        session.pendingDeliveries.removeAll()
        session.pendingGroupDeliveries.removeAll()
        // A connection that closes after these replies starts no deliveries: nothing follows its last reply.
        if keepOpen && (!subscriptions.isEmpty || !memberships.isEmpty) {
            // Those whose `ok` was just written start now; those whose `ok` waits behind a reply still to come
            // start once it is written.
            startDeliveries(
                subscriptions.filter { !$0.held }.map(\.subscription), memberships.filter { !$0.held }.map(\.membership)
            )
            let held = (subscriptions.filter(\.held).map(\.subscription), memberships.filter(\.held).map(\.membership))
            if !held.0.isEmpty || !held.1.isEmpty {
                session.order.then { [self] in startDeliveries(held.0, held.1) }
            }
        }
        for ended in session.endedGroupDeliveries {
            groupPumps.removeAll { pump in
                guard pump.subscription == ended else { return false }
                pump.stop()
                return true
            }
        }
        session.endedGroupDeliveries.removeAll()
        // After an unsubscribe's `ok` no event of it follows: what its pump holds counts as failed.
        for ended in session.endedDeliveries {
            pumps.removeAll { pump in
                guard pump.subscription === ended else { return false }
                pump.abandon()
                return true
            }
        }
        session.endedDeliveries.removeAll()
        if !keepOpen {
            isClosingAfterReplies = true
            // Nothing but the owed replies follows (`bye`, or an error that closes): no more deliveries, and
            // a group member takes no events it would never acknowledge (an ack owed its `ok` frees room in
            // `max_in_flight`, and each taken event would count a failed attempt when the member leaves).
            for pump in groupPumps { pump.stop() }
            for pump in pumps { pump.abandon() }
            session.order.then { [self] in close() }
        } else {
            pauseReadingWhileTheLogIsBehind()
            pauseReadingWhileRepliesWait()
        }
    }

    /// The module this connection said hello as, once its closer is kept in the registry.
    private var closableAs: String?

    /// Set when a frame asked to close while replies were still owed: later frames are not handled.
    private var isClosingAfterReplies = false

    /// Set once the connection closed and its subscriptions ended.
    private var hasEnded = false

    private func startDeliveries(_ subscriptions: [Subscription], _ memberships: [GroupMembership]) {
        // The connection closed while their `ok` waited: nothing was ever taken from them.
        guard !isClosing, !hasEnded else { return }
        for subscription in subscriptions {
            let pump = DeliveryPump(subscription: subscription, connection: self)
            pumps.append(pump)
            pump.run(context: output)
        }
        // A durable subscription unsubscribed while its `ok` waited has left its group: nothing to start.
        for membership in memberships where session.isMember(membership.member.subscription) {
            let pump = GroupDeliveryPump(membership: membership, connection: self)
            groupPumps.append(pump)
            pump.run(context: output)
        }
    }

    /// Set while reading from the connection is paused for the log (``pauseReadingWhileTheLogIsBehind()``);
    /// the transport's heartbeat does not count that silence against the client.
    private(set) var isReadingPaused = false

    /// Set while reading from the connection is paused because its client does not read its replies
    /// (``pauseReadingWhileRepliesWait()``). That silence is the client's doing: the heartbeat counts it.
    private var isPausedForReplies = false

    /// The most bytes a connection's replies may wait, written and not yet taken by its client, before the
    /// broker stops reading its requests (``pauseReadingWhileRepliesWait()``): tens of thousands of replies.
    static let unreadRepliesLimit = 4 << 20

    /// The replies waiting at the last ``repliesAreDraining()``.
    private var lastUnreadReplies = 0

    /// Whether, while reading is paused for unread replies, the client has taken some of them since the last
    /// call: a client that reads slowly is alive, though its pongs wait unread behind the replies. One that
    /// takes nothing is as silent as a dead one, for the heartbeat (PROTOCOL.md §2.3).
    func repliesAreDraining() -> Bool {
        guard isPausedForReplies,
            let waiting = try? output.channel.syncOptions?.getOption(.bufferedWritableBytes)
        else { return false }
        defer { lastUnreadReplies = waiting }
        return waiting < lastUnreadReplies
    }

    /// Stops reading from this connection while more than ``unreadRepliesLimit`` bytes of replies wait for
    /// its client to read them: a client that sends requests (`stats`, `ping`, confirmed publishes) and never
    /// reads the answers would otherwise have the broker keep every reply in memory. The client's writes then
    /// wait in its socket, as TCP flow control would have them. A client that writes thousands of requests
    /// before reading any reply is not held up; one that reads nothing at all for three heartbeats is closed
    /// by the heartbeat (``repliesAreDraining()``). Reading resumes once the connection is writable again
    /// (``writabilityChanged()``). Called after each read's replies, and after each write made outside
    /// ``handle(_:)`` (a heartbeat; a WebSocket's pong, or its error for a binary message).
    /// Deliveries never pile up this way: a pump writes only while the connection is writable.
    func pauseReadingWhileRepliesWait() {
        guard !isPausedForReplies,
            let waiting = try? output.channel.syncOptions?.getOption(.bufferedWritableBytes),
            waiting > Self.unreadRepliesLimit || writesWhileUnwritable > Self.unreadWritesLimit
        else { return }
        isPausedForReplies = true
        lastUnreadReplies = waiting
        output.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        guard !hasLoggedRepliesPause else { return }
        hasLoggedRepliesPause = true
        broker.logger.warning(
            "connection paused reading: its client does not read its replies",
            metadata: [
                "module": "\(session.clientName ?? "")", "ipc.unread_bytes": "\(waiting)",
                "ipc.unread_writes": "\(writesWhileUnwritable)",
            ])
    }

    /// The pause above is logged once per connection.
    private var hasLoggedRepliesPause = false

    /// Stops reading from this connection while the durable log holds more than
    /// ``DurableLog/backlogLimit`` bytes it has not written (a publisher that does not wait for confirms,
    /// faster than the disk under fsync `always`): the kernel's socket buffer fills and the publisher waits,
    /// instead of the broker's memory growing without bound and every confirmed publish waiting behind it.
    /// Reading resumes when the backlog is below half the limit. Checked after each read (``handle(_:)``).
    private func pauseReadingWhileTheLogIsBehind() {
        guard !isReadingPaused, let log = broker.log, log.backlog >= DurableLog.backlogLimit else { return }
        isReadingPaused = true
        let channel = output.channel
        channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let connection = NIOLoopBound(self, eventLoop: output.eventLoop)
        let loop = output.eventLoop
        log.whenBacklogDrains {
            loop.execute {
                connection.value.isReadingPaused = false
                guard channel.isActive, !connection.value.isPausedForReplies else { return }
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                channel.read()
            }
        }
    }

    /// Writes whole frames (a heartbeat, a control frame, a WebSocket's error for a binary message) and
    /// flushes. A client that makes the broker write this way without reading (binary messages by the
    /// thousand) is paused as one that does not read its replies.
    func write(_ bytes: [UInt8]) {
        noteReplyWrite()
        output.writeAndFlush(NIOAny(ByteBuffer(bytes: bytes)), promise: nil)
        if !isClosing, !isClosingAfterReplies { pauseReadingWhileRepliesWait() }
    }

    /// Counts the writes made while the connection is not writable: each waiting write costs the broker far
    /// more than its bytes (a WebSocket frame of a few bytes is a buffer and a queue entry of a hundred), so
    /// the pause for unread replies (``pauseReadingWhileRepliesWait()``) also counts them.
    private func noteReplyWrite() {
        if !output.channel.isWritable { writesWhileUnwritable += 1 }
    }

    /// Writes made since the connection last became unwritable.
    private var writesWhileUnwritable = 0

    /// The most writes that may wait while the connection is not writable before reading pauses.
    static let unreadWritesLimit = 16_384

    /// Closes the connection once what was written before reached the socket; nothing more the client
    /// sends is handled. Its output is shut first (the client reads everything, then the end), and the
    /// connection closed when the client closes its side; a client that neither reads nor closes is cut
    /// off after ``closeDeadline``. Closing at once would discard the writes still queued, and a close
    /// with unread input resets the connection, which can cost the client the last frames.
    /// `final`, when given, is written last instead of the connection's goodbye.
    func close(with final: [UInt8]? = nil) {
        guard !isClosing else { return }
        isClosing = true
        // The client is gone as far as the broker is concerned (`bye`, or an error that closes): its
        // subscriptions end and its group memberships pass to the other members now, not when it gets round
        // to closing its side — nothing more is delivered to it, and its module is unloaded.
        end()
        if let last = final ?? goodbye { output.write(NIOAny(ByteBuffer(bytes: last)), promise: nil) }
        let channel = output.channel
        let written = output.eventLoop.makePromise(of: Void.self)
        output.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.whenComplete { _ in channel.close(mode: .output, promise: nil) }
        channel.eventLoop.scheduleTask(in: Self.closeDeadline) { channel.close(promise: nil) }
    }

    /// Closes the connection at once, dropping what is still queued: its peer stopped answering.
    func closeNow() {
        isClosing = true
        output.close(promise: nil)
    }

    /// How long a closing connection waits for its client to read what was written and close.
    static let closeDeadline = TimeAmount.seconds(2)

    /// The connection closed: what the subscriptions still queue counts as failed, the group memberships
    /// end (what they hold goes to other members), and the module is unloaded when this was its last
    /// connection (PROTOCOL.md §3, §4.1, §4.2).
    func end() {
        guard !hasEnded else { return }
        hasEnded = true
        if let closableAs { broker.modules.forgetCloser(of: ObjectIdentifier(self), module: closableAs) }
        session.end()
        for pump in pumps { pump.abandon() }
        pumps.removeAll()
        for pump in groupPumps { pump.stop() }
        groupPumps.removeAll()
        waitingForWritable.removeAll()
    }

    /// Runs the pumps that waited for room, once the connection is writable again.
    func writabilityChanged() {
        guard output.channel.isWritable else { return }
        writesWhileUnwritable = 0
        if isPausedForReplies {
            isPausedForReplies = false
            if !isReadingPaused, !isClosing {
                output.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                output.channel.read()
            }
        }
        let waiting = waitingForWritable
        waitingForWritable.removeAll()
        for pump in waiting { pump.run(context: output) }
    }

    /// A pump found the connection full; it runs again when the connection is writable.
    func waitForWritable(_ pump: any ConnectionPump) {
        waitingForWritable.append(pump)
    }

    /// A durable subscription's events could not be read from the log: the client is told and the
    /// connection closed, so that what its members hold goes to other members.
    func failDelivery(group: String, error: LogError) {
        broker.logger.error(
            "group delivery failed: the log could not be read", metadata: ["group": "\(group)", "error": "\(error)"])
        var frame = FrameWriter(framing: framing)
        frame.error(
            ProtocolError(.storageFailed, "group \(group): the log could not be read: \(error)", requestID: nil))
        write(frame.bytes)
        close()
    }
}
