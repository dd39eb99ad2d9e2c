import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// The context of one HTTP request: the token it presented, once ``BearerAuthentication`` checked it.
struct GatewayContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The token presented; `nil` when the broker has none configured (everything is allowed).
    var token: HeraldConfiguration.Token?

    /// The path parameter `name`, percent-decoded (RFC 3986 §2.1: `ws%3Aanonymous` is `ws:anonymous`, as a
    /// browser's `encodeURIComponent` writes it); 400 when its encoding is broken.
    func pathParameter(_ name: String) throws(APIError) -> String {
        let raw = parameters.get(name) ?? ""
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError.invalidRequest("path: '\(raw)' is not valid percent-encoding")
        }
        return decoded
    }

    init(source: Source) {
        coreContext = CoreRequestContextStorage(source: source)
    }

    /// The client as the broker's checks see it, named `<kind>:<token name>` or `<kind>:anonymous`.
    func principal(_ kind: String) -> Principal {
        Principal(name: "\(kind):\(token?.name ?? "anonymous")", permissions: token)
    }

    /// Refuses a request that changes the broker unless its token is an `admin` one (or no token is
    /// configured).
    func requireAdmin(_ what: String) throws(APIError) {
        if let token, !token.admin {
            throw APIError(.forbidden, "forbidden", "\(what) needs a token with admin = true; '\(token.name)' is not")
        }
    }
}

/// Checks `Authorization: Bearer <token>` (or, for the dashboard and the WebSocket, `?token=`) on every request but
/// `/healthz` when tokens are configured (PROTOCOL.md §7): missing or wrong is 401. Without tokens, refuses
/// changes a page of another site asks a browser to send (``CrossSiteCheck``).
struct BearerAuthentication: RouterMiddleware {
    typealias Context = GatewayContext
    let tokens: [HeraldConfiguration.Token]

    func handle(
        _ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response
    ) async throws -> Response {
        try CrossSiteCheck.check(
            origin: request.headers[.origin], host: request.head.authority,
            method: request.method.rawValue, tokensConfigured: !tokens.isEmpty)
        guard !tokens.isEmpty, request.uri.path != "/healthz" else { return try await next(request, context) }
        var context = context
        let presented = Self.presented(by: request)
        context.token = try Self.authenticate(
            authorization: presented.authorization, queryToken: presented.queryToken, tokens: tokens)
        return try await next(request, context)
    }

    /// What `request` presents as its token: its `Authorization` header and, on the paths a browser opens
    /// (the dashboard, a WebSocket) — which cannot set headers — its `?token=`.
    static func presented(by request: Request) -> (authorization: String?, queryToken: String?) {
        let queryToken =
            ["/", "/v1/ws"].contains(request.uri.path) ? request.uri.queryParameters["token"].map(String.init) : nil
        return (request.headers[.authorization], queryToken)
    }

    /// The token a request presents, among `tokens` (not empty): 401 when it is missing or wrong.
    static func authenticate(authorization: String?, queryToken: String?, tokens: [HeraldConfiguration.Token])
        throws(APIError) -> HeraldConfiguration.Token
    {
        let presented: String?
        if let authorization {
            // The scheme's name is case-insensitive (RFC 9110 §11.1): `bearer` is `Bearer`.
            let scheme = authorization.prefix { $0 != " " }
            guard scheme.lowercased() == "bearer", scheme.count < authorization.count else {
                throw APIError(.unauthorized, "unauthorized", "Authorization: expected 'Bearer <token>'")
            }
            presented = String(authorization.dropFirst(scheme.count).drop { $0 == " " })
        } else {
            presented = queryToken
        }
        guard let presented else {
            throw APIError(.unauthorized, "unauthorized", "token: required by this broker (Authorization: Bearer …)")
        }
        guard let token = tokens.first(where: { IPCSession.sameSecret($0.secret, presented) }) else {
            throw APIError(.unauthorized, "unauthorized", "token: not valid")
        }
        return token
    }
}

/// `HEAD` on any path served for `GET` (RFC 9110 §9.3.2: the same status and headers, no body), as a load
/// balancer's probe or `curl -I` sends it: answered as the `GET`, errors included, with the body dropped. It
/// wraps the whole router, since the router picks the route by method before any middleware runs.
struct HeadAsGet<Wrapped: HTTPResponder>: HTTPResponder where Wrapped.Context == GatewayContext {
    typealias Context = GatewayContext
    let wrapped: Wrapped

    func respond(to request: Request, context: GatewayContext) async throws -> Response {
        guard request.method == .head else { return try await wrapped.respond(to: request, context: context) }
        var head = request.head
        head.method = .get
        var response: Response
        do {
            response = try await wrapped.respond(to: Request(head: head, body: request.body), context: context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        let length = response.body.contentLength
        response.body = ResponseBody()
        response.headers[.contentLength] = length.map { String($0) }
        return response
    }
}

/// Turns the framework's own errors (an unknown path, a wrong method, a body too large) into the API's
/// error body.
struct ErrorBodies: RouterMiddleware {
    typealias Context = GatewayContext
    /// The routes, to tell a path no route has (404) from a method its route does not take (405).
    let routes: RouteMethods

    func handle(
        _ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                let allowed = routes.methods(for: request.uri.path)
                guard allowed.isEmpty else {
                    var refusal = APIError(
                        .methodNotAllowed, "invalid_request",
                        "\(request.method) \(request.uri.path): not allowed; this path takes "
                            + allowed.joined(separator: ", "))
                    refusal.allow = allowed
                    throw refusal
                }
                throw APIError.notFound("\(request.method) \(request.uri.path): no such endpoint")
            case .methodNotAllowed:
                throw APIError(
                    .methodNotAllowed, "invalid_request", "\(request.method) \(request.uri.path): not allowed")
            case .contentTooLarge:
                throw APIError(.contentTooLarge, "too_large", "body: over the limit (http.max_body)")
            default:
                throw APIError(error.status, "invalid_request", error.body ?? error.status.reasonPhrase)
            }
        }
    }
}

/// The methods each route of the API takes, read from the router once its routes are added.
final class RouteMethods: Sendable {
    private let table = Mutex<[(segments: [Substring], method: String)]>([])

    /// Records `routes` (`Router.routes`).
    func set(_ routes: [(path: String, method: String)]) {
        table.withLock { table in
            table = routes.map { (Self.segments($0.path), $0.method) }
        }
    }

    /// The methods of the routes whose path matches `path` (a `{parameter}` matches any one segment), sorted;
    /// empty when no route has the path.
    func methods(for path: String) -> [String] {
        let requested = Self.segments(path)
        let routes = table.withLock { $0 }
        var methods = Set<String>()
        for route in routes where route.segments.count == requested.count {
            if zip(route.segments, requested).allSatisfy(Self.matches) { methods.insert(route.method) }
        }
        // HEAD is answered wherever GET is (``HeadAsGet``).
        if methods.contains("GET") { methods.insert("HEAD") }
        return methods.sorted()
    }

    /// Whether a route's path segment takes `segment`: the same word, or a parameter.
    private static func matches(_ pattern: Substring, _ segment: Substring) -> Bool {
        pattern == segment || pattern.hasPrefix("{") || pattern.hasPrefix(":") || pattern == "*"
    }

    private static func segments(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }
}
