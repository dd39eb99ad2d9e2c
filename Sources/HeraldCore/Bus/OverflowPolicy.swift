/// What a live subscription does with a new event when its bounded queue is full (PROTOCOL.md §4.1).
public struct OverflowPolicy: Sendable, Hashable, CustomStringConvertible {
    private enum Base: String, Sendable, Hashable {
        case dropNewest = "drop_newest"
        case dropOldest = "drop_oldest"
    }

    private let base: Base

    /// The new event is dropped; what is queued stays. The default, as the node's module system does.
    public static let dropNewest = OverflowPolicy(base: .dropNewest)
    /// The oldest queued event is dropped to make room for the new one.
    public static let dropOldest = OverflowPolicy(base: .dropOldest)

    /// The policy named as on the wire: `drop_newest` or `drop_oldest`.
    public init?(wireName: String) {
        guard let base = Base(rawValue: wireName) else { return nil }
        self.base = base
    }

    private init(base: Base) {
        self.base = base
    }

    /// The wire name, `drop_newest` or `drop_oldest`.
    public var description: String { base.rawValue }

    var evictsOldest: Bool { base == .dropOldest }
}
