/// Refuses what a web page of another site makes a browser send to a broker that asks no token
/// (docs/protocol.md, "Requests from other sites"): with no `[[auth.tokens]]` (allowed on a loopback
/// listener only), anyone who can reach the listener may publish and read, and a page open in a browser on
/// the same machine can reach `127.0.0.1`. Two checks, with no tokens configured:
/// - **`Host`**: a request must name the broker by an IP address or `localhost`. A page of another site that
///   re-points its own DNS name at `127.0.0.1` (DNS rebinding) sends its own name as `Host`, and the
///   browser then treats the broker as that site: refused (403), reads included.
/// - **`Origin`**: a request that changes something (`POST`, `PUT`, `DELETE`, `PATCH`) or opens a WebSocket
///   is refused (403) when a browser marked it with an `Origin` that is not the broker's own address
///   (`http://` or `https://` and the `Host`), as the dashboard's is.
/// Programs other than browsers send no `Origin` and name the broker by its address; with tokens
/// configured nothing is refused here: a page must present a token like anyone else.
enum CrossSiteCheck {
    /// Throws `forbidden` when `host` is a DNS name other than `localhost`, or when a state-changing
    /// `method` (`GET-UPGRADE` for a WebSocket) carries an `origin` that is not `http(s)://<host>`.
    static func check(origin: String?, host: String?, method: String, tokensConfigured: Bool) throws(APIError) {
        guard !tokensConfigured else { return }
        if let host, !isAddressOrLocalhost(host) {
            throw APIError(
                .forbidden, "forbidden",
                "Host: '\(host.prefix(255))' is not this broker's address; a broker without tokens answers only "
                    + "to an IP address or localhost; configure [[auth.tokens]] to be reached by a name")
        }
        guard let origin, ["POST", "PUT", "DELETE", "PATCH", "GET-UPGRADE"].contains(method) else { return }
        if let host, origin == "http://\(host)" || origin == "https://\(host)" { return }
        throw APIError(
            .forbidden, "forbidden",
            "Origin: a page from \(origin.prefix(255)) may not "
                + (method == "GET-UPGRADE" ? "open a WebSocket" : "send \(method)")
                + " to a broker without tokens; configure [[auth.tokens]] to let other sites in")
    }

    /// Whether `host` (a `Host` header: a name or address, and maybe `:port`) is an IPv4 address, a bracketed
    /// IPv6 address or `localhost`.
    static func isAddressOrLocalhost(_ host: String) -> Bool {
        if host.hasPrefix("[") {
            // `[v6]` or `[v6]:port`: only an address can be written in brackets.
            guard let close = host.firstIndex(of: "]") else { return false }
            let rest = host[host.index(after: close)...]
            return rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(isDigit))
        }
        let parts = host.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        if parts.count == 2 { guard !parts[1].isEmpty, parts[1].allSatisfy(isDigit) else { return false } }
        let name = parts[0].lowercased()
        if name == "localhost" { return true }
        let octets = name.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4
            && octets.allSatisfy { octet in
                !octet.isEmpty && octet.count <= 3 && octet.allSatisfy(isDigit) && (Int(octet) ?? 256) <= 255
            }
    }

    /// `0`–`9` only: `Character.isNumber` is also true of `½`, `²` or `٣`, which `Int` does not read.
    private static func isDigit(_ character: Character) -> Bool {
        character.isASCII && character.isNumber
    }
}
