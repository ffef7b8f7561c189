import Hummingbird

/// An error answered with the seed's body, `{"ok":false,"error":"…"}`, and a truthful status
/// (Hummingbird's own `HTTPError` nests the message differently).
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        json(ErrorBody(message), status: status)
    }
}
