extension HeraldConfiguration {
    /// Options whose feature is not built yet, with the issue that builds it. A configuration that sets any
    /// of them to something other than its default is refused, rather than run without what it asks for.
    /// Remove a line here when its feature lands.
    static let unbuiltOptions: [(key: String, isDefault: @Sendable (HeraldConfiguration) -> Bool, issue: String)] = [
        ("http.listen", { $0.http.listen == HTTP().listen }, "#5 (HTTP gateway)"),
        ("log", { $0.log == Log() }, "#4 (durable log)"),
        ("groups", { $0.groups == Groups() }, "#4 (consumer groups)"),
        ("modules", { $0.modules == Modules() }, "#6 (module supervisor)"),
    ]

    /// Refuses options whose feature is not built yet (see ``unbuiltOptions``).
    public func checkBuiltFeatures() throws(ConfigurationError) {
        for option in Self.unbuiltOptions where !option.isDefault(self) {
            throw ConfigurationError(key: option.key, "not built yet: arrives with issue \(option.issue)")
        }
    }
}
