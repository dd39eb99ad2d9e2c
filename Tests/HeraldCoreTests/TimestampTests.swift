import Testing

@testable import HeraldCore

@Suite struct TimestampTests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2026-11-23T08:00:00.123Z", 1_795_420_800_123),
        ("2026-11-23T08:00:00.1239999Z", 1_795_420_800_123),
        ("2026-11-23T08:00:00.1Z", 1_795_420_800_100),
        ("2026-11-23t08:00:00z", 1_795_420_800_000),
        ("2026-11-23T08:00:00+00:00", 1_795_420_800_000),
        ("2026-11-23T08:00:00-00:00", 1_795_420_800_000),
        ("2024-02-29T23:59:59.999Z", 1_709_251_199_999),
        ("1969-12-31T23:59:59.999Z", -1),
    ])
    func parsesUTC(_ text: String, _ milliseconds: Int64) {
        #expect(Timestamp.millisecondsSinceEpoch(text) == milliseconds)
    }

    @Test(arguments: [
        "", "2026-11-23", "2026-11-23 08:00:00Z", "2026-11-23T08:00:00", "2026-11-23T08:00:00+01:00",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-23T24:00:00Z",
        "2026-11-23T08:60:00Z", "2026-11-23T08:00:61Z", "2026-11-23T08:00:00.Z", "26-11-23T08:00:00Z",
        "2026-11-23T08:00:00ZZ", "２026-11-23T08:00:00Z",
    ])
    func rejectsWhatIsNotRFC3339UTC(_ text: String) {
        #expect(Timestamp.millisecondsSinceEpoch(text) == nil)
    }

    @Test(arguments: [
        ("2026-11-23T10:00:00.123+02:00", Int64(1_795_420_800_123)),
        ("2026-11-23T02:30:00-05:30", 1_795_420_800_000),
        ("2026-11-24T07:59:00+23:59", 1_795_420_800_000),
        ("2026-11-23T08:00:00Z", 1_795_420_800_000),
    ])
    func parsesAnyOffsetWhenAskedTo(_ text: String, _ milliseconds: Int64) {
        #expect(Timestamp.millisecondsSinceEpoch(text, anyOffset: true) == milliseconds)
    }

    @Test(arguments: ["2026-11-23T08:00:00+24:00", "2026-11-23T08:00:00+01:60", "2026-11-23T08:00:00+0100", "+01:00"])
    func rejectsImpossibleOffsets(_ text: String) {
        #expect(Timestamp.millisecondsSinceEpoch(text, anyOffset: true) == nil)
    }

    @Test(arguments: [Int64(0), 1, 999, 1_795_420_800_123, 1_709_251_199_999, 253_402_300_799_999, -1])
    func formatsWithMillisecondsAndParsesBack(_ milliseconds: Int64) throws {
        let text = Timestamp.format(millisecondsSinceEpoch: milliseconds)
        #expect(text.utf8.count == 24)
        #expect(text.hasSuffix("Z"))
        #expect(Timestamp.millisecondsSinceEpoch(text) == milliseconds)
    }

    /// Times beyond four-digit years are written as the nearest that can be (a negative year trapped, a
    /// year past 9999 lost its first digit).
    @Test func timesBeyondFourDigitYearsAreWrittenAsTheNearest() {
        #expect(Timestamp.format(millisecondsSinceEpoch: -62_167_219_200_001) == "0000-01-01T00:00:00.000Z")
        #expect(Timestamp.format(millisecondsSinceEpoch: .min) == "0000-01-01T00:00:00.000Z")
        #expect(Timestamp.format(millisecondsSinceEpoch: 253_402_300_800_000) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.format(millisecondsSinceEpoch: .max) == "9999-12-31T23:59:59.999Z")
        let early = Timestamp.millisecondsSinceEpoch("0000-01-01T00:00:00+00:01", anyOffset: true)
        #expect(early.map { Timestamp.format(millisecondsSinceEpoch: $0) } == "0000-01-01T00:00:00.000Z")
    }

    @Test func nowIsCurrent() throws {
        let before = Timestamp.currentMilliseconds()
        let parsed = try #require(Timestamp.millisecondsSinceEpoch(Timestamp.now()))
        let after = Timestamp.currentMilliseconds()
        #expect(parsed >= before && parsed <= after)
    }
}
