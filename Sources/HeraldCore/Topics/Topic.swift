/// Topics: the routing key of an event (PROTOCOL.md §1).
public enum Topic: Sendable {
    /// `eventType` when there is no chain, else `eventType.chainID` — `block.new.138`.
    public static func of(eventType: String, chainID: Int64?) -> String {
        guard let chainID else { return eventType }
        return eventType + "." + String(chainID)
    }
}
