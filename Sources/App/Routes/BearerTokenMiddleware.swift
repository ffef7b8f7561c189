import COpenSSL
import Hummingbird

/// Admits a request only with `Authorization: Bearer <token>`, compared in constant time so the
/// answer's timing does not reveal how much of a guess was right. Without a configured token every
/// request is refused with 503: the admin API is never open by default.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String?

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let token else {
            throw APIError(.serviceUnavailable, "admin API disabled: set ORCH_ADMIN_TOKEN")
        }
        let header = request.header(named: "Authorization") ?? ""
        guard header.hasPrefix("Bearer "), Self.constantTimeEqual(String(header.dropFirst("Bearer ".count)), token)
        else {
            throw APIError(.unauthorized, "missing or invalid bearer token")
        }
        return try await next(request, context)
    }

    /// Equal length and equal bytes, examining every byte whatever the first difference.
    static func constantTimeEqual(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 }
        }
    }
}
