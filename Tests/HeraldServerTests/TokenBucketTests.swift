import Testing

@testable import HeraldServer

@Suite struct TokenBucketTests {
    @Test func allowsABurstOfOneSecondThenTheRate() {
        var bucket = TokenBucket(rate: 10, now: .zero)
        let burst = (0..<15).filter { _ in bucket.take(now: .zero) }.count
        #expect(burst == 10)
        // A tenth of a second refills one token, and no more.
        let refilled = bucket.take(now: .milliseconds(100))
        let again = bucket.take(now: .milliseconds(100))
        #expect(refilled)
        #expect(!again)
        // A long pause refills to one second's worth, not beyond.
        let later = (0..<15).filter { _ in bucket.take(now: .seconds(60)) }.count
        #expect(later == 10)
    }
}
