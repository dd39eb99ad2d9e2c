import Testing

@testable import HeraldLog

@Suite struct ChecksumTests {
    @Test func crc32cMatchesTheStandardCheckValues() {
        // The check value of CRC-32C (RFC 3720 and the CRC catalogue), and RFC 3720's 32 zero bytes.
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        #expect([UInt8](repeating: 0, count: 32).withUnsafeBytes { CRC32C.checksum($0) } == 0x8A91_36AA)
        #expect([UInt8](repeating: 0xFF, count: 32).withUnsafeBytes { CRC32C.checksum($0) } == 0x62A8_AB43)
    }

    @Test func crc32cIsTheSameInOnePieceOrMany() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        for split in [1, 7, 8, 9, 500, 999] {
            let first = bytes[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            #expect(bytes[split...].withUnsafeBytes { CRC32C.update(first, with: $0) } == whole)
        }
    }

    @Test func crc32cByInstructionAndByTableAgree() {
        // The machine running the tests uses one of the two for every record; both must give the same sums.
        // Lengths about the instruction's three-stream blocks (3 × 128 and 3 × 8 192 bytes), from odd addresses.
        let lengths =
            [0, 1, 7, 8, 9, 63, 64, 65, 383, 384, 385, 391, 500, 767, 768, 1000]
            + [24_575, 24_576, 24_577, 24_960, 100_003]
        for length in lengths {
            for start in [0, 3] {
                let bytes = (0..<(length + start)).map { UInt8(truncatingIfNeeded: ($0 &* 131 &+ 17) ^ ($0 >> 9)) }
                bytes.withUnsafeBytes { all in
                    let part = UnsafeRawBufferPointer(rebasing: all[start...])
                    let bySoftware = CRC32C.updateInSoftware(0x1234_5678, with: part)
                    #expect(CRC32C.update(0x1234_5678, with: part) == bySoftware, "\(length) bytes from \(start)")
                }
            }
        }
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.updateInSoftware(0, with: $0) } == 0xE306_9283)
    }

    @Test func fnv1a64MatchesItsReferenceValues() {
        #expect(FNV1a64.hash("".utf8) == 0xCBF2_9CE4_8422_2325)
        #expect(FNV1a64.hash("a".utf8) == 0xAF63_DC4C_8601_EC8C)
        #expect(FNV1a64.hash("foobar".utf8) == 0x8594_4171_F739_67E8)
        // Bytes that are not contiguous go byte by byte, to the same value.
        #expect(FNV1a64.hash(AnySequence("foobar".utf8)) == 0x8594_4171_F739_67E8)
        #expect(FNV1a64.hash(Array("foobar".utf8)) == 0x8594_4171_F739_67E8)
    }
}
