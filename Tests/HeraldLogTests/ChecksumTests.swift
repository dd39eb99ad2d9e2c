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
        for length in [0, 1, 7, 8, 9, 63, 64, 65, 1000] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
            let bySoftware = bytes.withUnsafeBytes { CRC32C.updateInSoftware(0x1234_5678, with: $0) }
            #expect(bytes.withUnsafeBytes { CRC32C.update(0x1234_5678, with: $0) } == bySoftware)
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
