import Hummingbird
import HummingbirdCore

/// Refuses a query that gives one parameter twice (`?topics=a&topics=b`, `?limit=1&limit=2`) with 400, as a
/// JSON object with a name given twice is refused (docs/protocol.md): taking the first or the last would
/// silently serve something the client did not ask for. After the token check, so that a request without
/// a valid token learns nothing more than 401.
struct RepeatedQueryParameters: RouterMiddleware {
    typealias Context = GatewayContext

    func handle(
        _ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response
    ) async throws -> Response {
        try Self.check(request.uri)
        return try await next(request, context)
    }

    /// Throws `invalid_request` naming the first parameter `uri`'s query repeats.
    static func check(_ uri: URI) throws(APIError) {
        var seen: Set<Substring> = []
        for (name, _) in uri.queryParameters where !seen.insert(name).inserted {
            throw .invalidRequest("\(name): given more than once in the query")
        }
    }
}
