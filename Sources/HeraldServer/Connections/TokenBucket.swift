/// A connection's publish allowance (PROTOCOL.md §6, `ipc.publish_rate`): `rate` events per second, with
/// bursts of up to one second's worth. Time is passed in, so the bucket is a plain value.
struct TokenBucket {
    private let rate: Double
    private var tokens: Double
    private var last: Duration

    /// A full bucket for `rate` events per second, as of `now` (any monotonic origin).
    init(rate: Int, now: Duration) {
        self.rate = Double(rate)
        self.tokens = Double(rate)
        self.last = now
    }

    /// Takes one token if there is one; returns whether the event may be published.
    mutating func take(now: Duration) -> Bool {
        let elapsed = now - last
        last = now
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(rate, tokens + seconds * rate)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
