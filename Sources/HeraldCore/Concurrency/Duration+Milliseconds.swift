extension Duration {
    /// The whole milliseconds in this duration (rounded toward zero).
    package var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
