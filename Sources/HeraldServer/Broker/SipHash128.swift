/// SipHash with a 128-bit output (Aumasson and Bernstein; the reference `siphash.c` with `outlen` 16), keyed
/// per process: what the dedup window keys `event_id`s by. SipHash-1-3, the rounds Swift's own `Hasher` runs,
/// in one pass for all 128 bits, where two `Hasher`s (two passes, each with its set-up and finalization)
/// cost about twice as much; the tests check the code against the reference vectors of SipHash-2-4.
struct SipHash128 {
    let key0: UInt64
    let key1: UInt64

    /// A key drawn from the system's random source when the process first uses it.
    static let seeded = SipHash128(
        key0: UInt64.random(in: .min ... .max), key1: UInt64.random(in: .min ... .max))

    /// SipHash-1-3-128 of `bytes`: the first and second 64 bits of the output, each read little-endian.
    func hash(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        hash(bytes, compressionRounds: 1, finalizationRounds: 3)
    }

    /// SipHash-c-d-128 of `bytes`, `c` and `d` given (the tests use 2 and 4, the reference's).
    @inline(__always)
    func hash(_ bytes: UnsafeRawBufferPointer, compressionRounds: Int, finalizationRounds: Int) -> (UInt64, UInt64) {
        var state = State(key0: key0, key1: key1)
        let whole = bytes.count & ~7
        var index = 0
        while index < whole {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            state.compress(word, rounds: compressionRounds)
            index &+= 8
        }
        var last = UInt64(truncatingIfNeeded: bytes.count) << 56
        var shift: UInt64 = 0
        while index < bytes.count {
            last |= UInt64(bytes[index]) << shift
            shift &+= 8
            index &+= 1
        }
        state.compress(last, rounds: compressionRounds)
        state.v2 ^= 0xEE
        state.rounds(finalizationRounds)
        let first = state.v0 ^ state.v1 ^ state.v2 ^ state.v3
        state.v1 ^= 0xDD
        state.rounds(finalizationRounds)
        return (first, state.v0 ^ state.v1 ^ state.v2 ^ state.v3)
    }

    private struct State {
        var v0: UInt64
        var v1: UInt64
        var v2: UInt64
        var v3: UInt64

        @inline(__always)
        init(key0: UInt64, key1: UInt64) {
            v0 = key0 ^ 0x736F_6D65_7073_6575
            // 0xEE: the reference's mark of a 128-bit output.
            v1 = key1 ^ 0x646F_7261_6E64_6F6D ^ 0xEE
            v2 = key0 ^ 0x6C79_6765_6E65_7261
            v3 = key1 ^ 0x7465_6462_7974_6573
        }

        @inline(__always)
        mutating func compress(_ word: UInt64, rounds count: Int) {
            v3 ^= word
            rounds(count)
            v0 ^= word
        }

        @inline(__always)
        mutating func rounds(_ count: Int) {
            for _ in 0..<count {
                v0 &+= v1
                v1 = v1.rotatedLeft(13) ^ v0
                v0 = v0.rotatedLeft(32)
                v2 &+= v3
                v3 = v3.rotatedLeft(16) ^ v2
                v0 &+= v3
                v3 = v3.rotatedLeft(21) ^ v0
                v2 &+= v1
                v1 = v1.rotatedLeft(17) ^ v2
                v2 = v2.rotatedLeft(32)
            }
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ bits: UInt64) -> UInt64 {
        (self << bits) | (self >> (64 &- bits))
    }
}
