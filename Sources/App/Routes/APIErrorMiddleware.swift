import Hummingbird
import Store

/// Turns what a route did not expect into the seed's error body: a lost or exhausted database is
/// 503 (retry later), anything else 500 with the detail only in the log. Without it such errors
/// would leave the router as bodiless 500s.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch let error as PostgresError where error.isConnectionLost || error.kind == .poolTimeout {
            throw APIError(.serviceUnavailable, "database unavailable")
        } catch {
            context.logger.error("admin request failed", metadata: ["error": "\(error)"])
            throw APIError(.internalServerError, "internal error")
        }
    }
}
