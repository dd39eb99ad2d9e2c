import HeraldCore

extension Broker {
    /// A connection of the module `name` closed (PROTOCOL.md §3). When it was the last one of a loaded
    /// module, `module.unloaded` follows: the supervisor publishes it for a module it started (it knows
    /// whether the broker stopped it or its process crashed); otherwise it is `bye` or `disconnected`.
    /// `unresponsive`: the broker closed the connection for heartbeats of silence.
    func moduleDisconnected(_ name: String, saidBye: Bool, unresponsive: Bool) {
        // Under the module-load lock: a module loading at the same moment sees this module loaded (in its
        // replay) and then unloaded, or neither — never its unload before its load.
        loadingModules { unloadIfLast(name, saidBye: saidBye, unresponsive: unresponsive) }
    }

    private func unloadIfLast(_ name: String, saidBye: Bool, unresponsive: Bool) {
        let (last, unloaded) = modules.disconnected(name)
        guard last else { return }
        if let supervisor,
            supervisor.disconnected(name, unloaded: unloaded, saidBye: saidBye, unresponsive: unresponsive)
        {
            return
        }
        guard let unloaded else { return }
        // During a shutdown the broker stopped it, whether it said bye on the way or was closed at the
        // deadline (PROTOCOL.md §3: "stopped … shutdown — even if it said bye on the way").
        let reason: UnloadReason = isShuttingDown ? .stopped : saidBye ? .bye : .disconnected
        publish(ModuleUnloaded(moduleName: unloaded.name, version: unloaded.version, reason: reason))
    }

    /// A connection of the module `name` reports its health from its heartbeats; a change of the module's
    /// health publishes `module.health_changed`.
    func connection(_ connection: ObjectIdentifier, of name: String, is health: ModuleHealth) {
        guard let change = modules.report(health, of: connection, module: name) else { return }
        logger.log(
            level: change.new == .healthy ? .info : .warning, "module health changed",
            metadata: ["module": "\(name)", "module.health": "\(change.new.rawValue)"])
        publish(ModuleHealthChanged(moduleName: name, oldHealth: change.old, newHealth: change.new))
    }
}

extension Broker {
    /// Publishes `config.loaded` with the sections that differ from the defaults (EVENTS.md: the first
    /// event of the startup).
    public func configurationLoaded() {
        publish(ConfigLoaded(changedSections: configuration.changedSections))
    }
}

extension Broker {
    /// The modules subscribed to events of `eventType` (PROTOCOL.md §2.2 `subscribers`), sorted: by a live
    /// subscription, or as a member of a consumer group whose topics take them.
    func subscribers(for eventType: String) -> [String] {
        var modules = Set(bus.subscribers(for: eventType))
        if let groups { modules.formUnion(groups.subscribers(for: eventType)) }
        return modules.sorted()
    }
}
