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
        struct Module: Encodable {
            let name: String
            let version: String
            /// `loaded`, or `connected` before its first `subscribe` or `ready`.
            let state: String
            let health: String
            /// `nil`: modules the broker did not start (the supervisor, issue #6, starts them).
            let pid: Int?
            let restarts: Int
            /// RFC 3339; `nil` while not loaded.
            let loadedAt: String?
            /// Open IPC connections of the module.
            let connections: Int
            /// Started by the broker, or connected on its own.
            let managed: Bool

            enum CodingKeys: String, CodingKey {
                case name, version, state, health, pid, restarts, connections, managed
                case loadedAt = "loaded_at"
            }

            // `pid` and `loaded_at` are written as `null` rather than left out, so every row has every field.
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(name, forKey: .name)
                try container.encode(version, forKey: .version)
                try container.encode(state, forKey: .state)
                try container.encode(health, forKey: .health)
                try container.encode(pid, forKey: .pid)
                try container.encode(restarts, forKey: .restarts)
                try container.encode(loadedAt, forKey: .loadedAt)
                try container.encode(connections, forKey: .connections)
                try container.encode(managed, forKey: .managed)
            }
        }
        let modules: [Module]
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
                body: .init(byteBuffer: ByteBuffer(string: metricsText())))
        }
        router.get("/v1/stats") { _, _ in
            JSONResponse.encode(Statistics(stats: broker.bus.allDeliveryStatistics()))
        }
        router.get("/v1/stats/{module}") { _, context -> Response in
            let name = try context.parameters.require("module")
            guard let statistics = broker.bus.deliveryStatistics(for: name) else {
                throw APIError.notFound("module: '\(name)' was never seen")
            }
            return JSONResponse.encode(Statistics(stats: [name: statistics]))
        }
        router.delete("/v1/stats/{module}") { _, context -> Response in
            try context.requireAdmin("resetting statistics")
            let name = try context.parameters.require("module")
            guard broker.bus.resetDeliveryStatistics(for: name) else {
                throw APIError.notFound("module: '\(name)' was never seen")
            }
            return JSONResponse.encode(Statistics(stats: [name: broker.bus.deliveryStatistics(for: name)!]))
        }
        router.get("/v1/subscribers") { request, _ -> Response in
            guard let eventType = request.uri.queryParameters["event_type"].map(String.init) else {
                throw APIError.invalidRequest("event_type: required, the event type to look up")
            }
            do throws(EnvelopeError) {
                try EnvelopeFields.validateEventType(eventType)
            } catch {
                throw APIError.invalidRequest("event_type: \(error)")
            }
            return JSONResponse.encode(Subscribers(subscribers: broker.bus.subscribers(for: eventType).sorted()))
        }
        router.get("/v1/modules") { _, _ in
            let modules = broker.modules.listing.map { module in
                Modules.Module(
                    name: module.name, version: module.version, state: module.loadedAt == nil ? "connected" : "loaded",
                    health: "healthy", pid: nil, restarts: 0,
                    loadedAt: module.loadedAt.map {
                        Timestamp.format(millisecondsSinceEpoch: Int64($0.timeIntervalSince1970 * 1000))
                    },
                    connections: module.connections, managed: false)
            }
            return JSONResponse.encode(Modules(modules: modules))
        }
        for action in ["load", "unload", "reload"] {
            router.post("/v1/modules/{name}/\(action)") { _, context -> Response in
                try context.requireAdmin("\(action)ing a module")
                throw APIError(
                    .notImplemented, "not_implemented",
                    "\(action): the module supervisor is not built yet (issue #6); modules connect on their own")
            }
        }
    }
}
