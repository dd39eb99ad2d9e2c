import Dispatch
import HTTPTypes
import Hummingbird
import Metrics

/// Counts and times every HTTP request (docs/operations.md): `herald_http_requests_total` by method, route,
/// status and token, and `herald_http_request_duration_seconds` by method and route. The route is the
/// matched pattern (`/v1/groups/{group}/dead-letters`), never the path itself, so that a scanner trying
/// random paths adds one series (`route="unmatched"`), not one per path. The token is the configured
/// token's name, `anonymous` when none was presented (or none is configured), `invalid` for a wrong one.
/// Outermost, so that refused requests (401, 404, 413) count with the status they were answered with; it
/// therefore checks the token itself, as ``BearerAuthentication`` does after it.
struct RequestMetrics: RouterMiddleware {
    typealias Context = GatewayContext
    let tokens: [HeraldConfiguration.Token]

    func handle(
        _ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response
    ) async throws -> Response {
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status, since: started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            record(request, context, status: status, since: started)
            throw error
        }
    }

    private func record(
        _ request: Request, _ context: GatewayContext, status: HTTPResponse.Status, since started: UInt64
    ) {
        // Hummingbird names a request no route matched `NotFound`; routes all start with `/`.
        let route = context.endpointPath.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "unmatched"
        let (authorization, queryToken) = BearerAuthentication.presented(by: request)
        Self.record(
            method: request.method.rawValue, route: route, status: Int(status.code),
            token: Self.tokenLabel(authorization: authorization, queryToken: queryToken, tokens: tokens),
            since: started)
    }

    /// Counts and times one request: also a WebSocket upgrade, answered before the router
    /// (``WebSocketUpgradeGate``).
    static func record(method: String, route: String, status: Int, token: String, since started: UInt64) {
        Counter(
            label: "herald_http_requests_total",
            dimensions: [("method", method), ("route", route), ("status", String(status)), ("token", token)]
        ).increment()
        Timer(label: "herald_http_request_duration_seconds", dimensions: [("method", method), ("route", route)])
            .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
    }

    /// The name the `token` label gives the token a request presents.
    static func tokenLabel(authorization: String?, queryToken: String?, tokens: [HeraldConfiguration.Token])
        -> String
    {
        guard !tokens.isEmpty, authorization != nil || queryToken != nil else { return "anonymous" }
        return
            (try? BearerAuthentication.authenticate(
                authorization: authorization, queryToken: queryToken, tokens: tokens))?.name ?? "invalid"
    }
}
