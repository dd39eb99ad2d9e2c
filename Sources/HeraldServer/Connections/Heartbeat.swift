import NIOCore

/// PROTOCOL.md §2.3's heartbeat of one connection, IPC or WebSocket: a connection that has sent nothing for
/// `interval` is pinged; one that stays silent for three intervals, at least two of them after its first
/// ping (a check that runs late on a busy machine still leaves a client two intervals to answer), is dead.
/// Each check says what to do and when the next one is due, so a ping or a close comes when its time is up
/// (give or take the event loop's delay), not up to an interval later as with a check every interval.
struct Heartbeat {
    let interval: TimeAmount
    private var lastHeard: NIODeadline
    /// When the current silence's first ping was sent.
    private var firstPing: NIODeadline?

    enum Verdict: Equatable {
        /// Heard within the interval.
        case alive
        /// Silent: send a ping. `unanswered`: an earlier ping of this silence went unanswered for an interval.
        case ping(unanswered: Bool)
        /// Silent for three intervals, two since the first ping: close it.
        case dead
    }

    init(interval: TimeAmount, now: NIODeadline) {
        self.interval = interval
        lastHeard = now
    }

    /// The client sent something (or the broker is not reading it: that silence is not the client's).
    mutating func heard(at now: NIODeadline) {
        lastHeard = now
        firstPing = nil
    }

    /// What to do at `now`, and when to check next.
    mutating func check(at now: NIODeadline) -> (verdict: Verdict, next: NIODeadline) {
        guard now - lastHeard >= interval else {
            firstPing = nil
            return (.alive, lastHeard + interval)
        }
        guard let pinged = firstPing else {
            firstPing = now
            return (.ping(unanswered: false), now + interval)
        }
        let deadline = max(lastHeard + interval * 3, pinged + interval * 2)
        if now >= deadline { return (.dead, deadline) }
        let unanswered = now - pinged >= interval
        return (.ping(unanswered: unanswered), unanswered ? deadline : min(pinged + interval, deadline))
    }
}
