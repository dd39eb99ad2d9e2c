import Testing

@testable import HeraldCore

/// `EventMetadata`: names in publish order, one value each, found alike with few names and with many.
struct EventMetadataTests {
    @Test(arguments: [3, EventMetadata.indexedFrom, EventMetadata.indexedFrom + 1, 200])
    func namesKeepTheirOrderAndOneValueEach(count: Int) {
        var metadata = EventMetadata()
        for number in 0..<count { #expect(metadata.updateValue("v\(number)", forKey: "n\(number)") == nil) }
        #expect(metadata.count == count)
        #expect(metadata.map(\.key) == (0..<count).map { "n\($0)" })
        // Setting a name again replaces its value in its place.
        #expect(metadata.updateValue("again", forKey: "n1") == "v1")
        #expect(metadata["n1"] == "again")
        #expect(metadata.map(\.key) == (0..<count).map { "n\($0)" })
        // Removing one keeps the others' order, and each is still found.
        metadata["n0"] = nil
        #expect(metadata["n0"] == nil)
        #expect(metadata.count == count - 1)
        #expect(metadata.map(\.key) == (1..<count).map { "n\($0)" })
        for number in 2..<count { #expect(metadata["n\(number)"] == "v\(number)") }
        metadata["n0"] = "back"
        #expect(metadata.map(\.key).last == "n0")
        #expect(metadata["missing"] == nil)
    }

    @Test func equalityAndHashFollowNamesValuesAndOrder() {
        let one: EventMetadata = ["a": "1", "b": "2"]
        #expect(one == ["a": "1", "b": "2"])
        #expect(one.hashValue == EventMetadata(dictionaryLiteral: ("a", "1"), ("b", "2")).hashValue)
        #expect(one != ["b": "2", "a": "1"])
        #expect(one != ["a": "1", "b": "3"])
        #expect(one != ["a": "1"])
        // A repeated name in a literal keeps its last value.
        #expect(EventMetadata(dictionaryLiteral: ("a", "1"), ("a", "2")) == ["a": "2"])
    }
}
