import Foundation
import HTTPTypes
import HeraldProtocol
import Hummingbird

/// An HTTP API error (PROTOCOL.md §7, §9): `{"error":{"code","message"}}` with its status, and `index` for
/// the first bad event of a batch. Codes are those of §2.4, and for what only HTTP has: `not_found` (404),
/// `too_large` (413), `not_implemented` (501), `not_ready` (503).
struct APIError: Error, HTTPResponseError {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    /// The position of the event at fault in a batch.
    var index: Int?
    /// For 405: the methods the path takes, sent as `Allow` (RFC 9110 §15.5.6).
    var allow: [String] = []

    /// A message that quotes the request (a path, a field) is cut as an IPC error's is, to 1 KiB.
    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, index: Int? = nil) {
        self.status = status
        self.code = code
        self.message = ProtocolError.clamped(message)
        self.index = index
    }

    /// The error a client of the IPC socket would get, with the status §9 gives its code.
    init(_ error: ProtocolError, index: Int? = nil) {
        let status: HTTPResponse.Status =
            switch error.code {
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .rateLimited: .tooManyRequests
            case .shuttingDown: .serviceUnavailable
            case .storageFailed: .internalServerError
            case .frameTooLarge: .contentTooLarge
            default: .badRequest
            }
        self.init(status, error.code.description, error.message, index: index)
    }

    static func invalidRequest(_ message: String) -> APIError {
        APIError(.badRequest, "invalid_request", message)
    }

    static func notFound(_ message: String) -> APIError {
        APIError(.notFound, "not_found", message)
    }

    private struct Body: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let index: Int?
        }
        let error: Detail
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.encode(body, status: status)
        if !allow.isEmpty { response.headers[.allow] = allow.joined(separator: ", ") }
        // A 401 names the scheme that would be accepted (RFC 9110 §11.6.1, §15.5.2).
        if status == .unauthorized { response.headers[.wwwAuthenticate] = #"Bearer realm="herald""# }
        return response
    }

    fileprivate var body: some Encodable { Body(error: .init(code: code, message: message, index: index)) }
}

/// JSON response bodies.
enum JSONResponse {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// `value` as a JSON body.
    static func encode(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        // Every value encoded here is built of strings, numbers, arrays and objects, which always encode.
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data))
        )
    }

    /// The body of `error`, for a response written outside the router.
    static func errorBody(_ error: APIError) -> ByteBuffer {
        ByteBuffer(data: (try? encoder.encode(error.body)) ?? Data("{}".utf8))
    }

    /// JSON text already written, as a body.
    static func raw(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
