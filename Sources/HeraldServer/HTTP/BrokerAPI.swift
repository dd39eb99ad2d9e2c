import Foundation
import HTTPTypes
import HeraldCore
import Hummingbird

/// Health, readiness, statistics, subscribers and modules (PROTOCOL.md §5, §7).
extension HTTPGateway {
    private struct Status: Encodable {
        let status: String
    }

    private struct Statistics: Encodable {
        let stats: [String: DeliveryStatistics]
    }

    private struct Subscribers: Encodable {
        let subscribers: [String]
    }

    private struct Modules: Encodable {
        let modules: [Module]
    }

    /// One row of `GET /v1/modules`, and the body of `POST /v1/modules/{name}/…`.
    struct Module: Encodable {
        let name: String
        let version: String
        /// ``ModuleState``: `starting`, `running`, `stopping`, `restarting`, `stopped`, `failed`, or
        /// `external` for a module that connected on its own.
        let state: String
        /// `healthy`, `degraded` or `unhealthy` while connected; `null` otherwise.
        @NullWhenAbsent var health: String?
        @NullWhenAbsent var pid: Int32?
        let restarts: Int
        /// RFC 3339; `null` while not loaded.
        @NullWhenAbsent var loadedAt: String?
        /// Open IPC connections of the module.
        let connections: Int
        /// Why it is failed or stopped, when the broker knows.
        @NullWhenAbsent var problem: String?

        init(_ status: ModuleSupervisor.ModuleStatus) {
            name = status.name
            version = status.version
            state = status.state.rawValue
            health = status.health?.rawValue
            pid = status.pid
            restarts = status.restarts
            loadedAt = status.loadedAt.map {
                Timestamp.format(millisecondsSinceEpoch: Int64($0.timeIntervalSince1970 * 1000))
            }
            connections = status.connections
            problem = status.problem
        }

        enum CodingKeys: String, CodingKey {
            case name, version, state, health, pid, restarts, connections, problem
            case loadedAt = "loaded_at"
        }
    }

    func addBrokerRoutes(to router: Router<GatewayContext>) {
        let broker = self.broker
        router.get("/healthz") { _, _ in JSONResponse.encode(Status(status: "ok")) }
        router.get("/") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
        }
        router.get("/readyz") { _, _ -> Response in
            if broker.isReady { return JSONResponse.encode(Status(status: "ready")) }
            throw APIError(
                .serviceUnavailable, "not_ready",
                broker.isShuttingDown ? "the broker is shutting down" : "the broker has not completed its startup")
        }
        let metricsText = self.metricsText
        router.get("/metrics") { _, _ -> Response in
            guard let metricsText else {
                throw APIError(
                    .notImplemented, "not_implemented", "metrics: this process bootstrapped no metrics backend")
            }
            broker.metrics.refresh(broker)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: MetricHelp.adding(to: metricsText()))))
        }
        router.get("/v1/stats") { _, _ in
            JSONResponse.encode(Statistics(stats: broker.bus.allDeliveryStatistics()))
        }
        router.get("/v1/stats/{module}") { _, context -> Response in
            let name = try context.pathParameter("module")
            guard let statistics = broker.bus.deliveryStatistics(for: name) else {
                throw APIError.notFound("module: '\(name)' was never seen")
            }
            return JSONResponse.encode(Statistics(stats: [name: statistics]))
        }
        router.delete("/v1/stats/{module}") { _, context -> Response in
            try context.requireAdmin("resetting statistics")
            let name = try context.pathParameter("module")
            // The counters just reset, read once: a second lookup could find the name forgotten meanwhile.
            guard let statistics = broker.bus.resetDeliveryStatistics(for: name) else {
                throw APIError.notFound("module: '\(name)' was never seen")
            }
            return JSONResponse.encode(Statistics(stats: [name: statistics]))
        }
        router.get("/v1/subscribers") { request, _ -> Response in
            guard let eventType = request.uri.queryParameters["event_type"].map(String.init) else {
                throw APIError.invalidRequest("event_type: required, the event type to look up")
            }
            do throws(EnvelopeError) {
                try EnvelopeFields.validateEventType(eventType)
            } catch {
                throw APIError.invalidRequest("\(error)")
            }
            return JSONResponse.encode(Subscribers(subscribers: broker.subscribers(for: eventType)))
        }
        router.get("/v1/modules") { _, _ in
            let statuses = broker.supervisor?.statuses ?? ModuleSupervisor.externalStatuses(broker.modules)
            return JSONResponse.encode(Modules(modules: statuses.map(Module.init)))
        }
        for action in ["load", "unload", "reload"] {
            router.post("/v1/modules/{name}/\(action)") { _, context -> Response in
                try context.requireAdmin("\(action)ing a module")
                guard let supervisor = broker.supervisor else {
                    throw APIError(
                        .serviceUnavailable, "not_ready", "\(action): the module supervisor is not running")
                }
                let name = try context.pathParameter("name")
                do throws(ModuleSupervisor.ControlError) {
                    let status =
                        switch action {
                        case "load": try await supervisor.load(name)
                        case "unload": try await supervisor.unload(name)
                        default: try await supervisor.reload(name)
                        }
                    return JSONResponse.encode(Module(status))
                } catch {
                    if error.notFound { throw APIError.notFound(error.description) }
                    throw APIError(.badRequest, "invalid_request", error.description)
                }
            }
        }
    }
}
