import Testing

@testable import HeraldCore

@Suite struct EventIDTests {
    @Test func isLowercaseHyphenatedUUIDv4() {
        for _ in 0..<1000 {
            let id = Array(EventID.random().utf8)
            #expect(id.count == 36)
            for (index, byte) in id.enumerated() {
                if [8, 13, 18, 23].contains(index) {
                    #expect(byte == UInt8(ascii: "-"))
                } else {
                    #expect(
                        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                            || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f")))
                }
            }
            #expect(id[14] == UInt8(ascii: "4"))  // version
            // The RFC 4122 variant.
            #expect([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(id[19]))
        }
    }

    @Test func isUnique() {
        let ids = (0..<10_000).map { _ in EventID.random() }
        #expect(Set(ids).count == ids.count)
    }
}
