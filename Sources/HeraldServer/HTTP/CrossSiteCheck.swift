/// Refuses what a web page of another site makes a browser send to a broker that asks no token
/// (docs/protocol.md, "Requests from other sites"): with no `[[auth.tokens]]`, anyone who can reach the
/// listener may publish, and a page open in a browser on the same machine can reach `127.0.0.1`. A browser
/// marks such a request with an `Origin` header naming the page's site; a request that changes something
/// (`POST`, `PUT`, `DELETE`) or opens a WebSocket is refused (403) when its `Origin` is not the broker's own
/// address (the `Host` it was sent to), as the dashboard's is. Programs other than browsers send no `Origin`
/// and are not affected; with tokens configured, a page must present one, and nothing is refused here.
enum CrossSiteCheck {
    /// Throws `forbidden` when `origin` is present and is not `http://<host>` or `https://<host>`.
    static func check(origin: String?, host: String?, method: String, tokensConfigured: Bool) throws(APIError) {
        guard !tokensConfigured, let origin, ["POST", "PUT", "DELETE", "PATCH", "GET-UPGRADE"].contains(method)
        else { return }
        if let host, origin == "http://\(host)" || origin == "https://\(host)" { return }
        throw APIError(
            .forbidden, "forbidden",
            "Origin: a page from \(origin) may not \(method == "GET-UPGRADE" ? "open a WebSocket" : "send \(method)") "
                + "to a broker without tokens; configure [[auth.tokens]] to let other sites in")
    }
}
