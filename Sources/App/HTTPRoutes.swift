import Foundation
import Hummingbird
import Logging
import Store

/// `{"status":"ok","service":"orchestrator"}`: the seed service's liveness body.
struct HealthBody: ResponseCodable {
    let status: String
    let service: String
}

/// The readiness body.
struct ReadyBody: ResponseCodable {
    let status: String
    let database: String
}

/// The seed's error shape: `{"ok":false,"error":"…"}`.
struct ErrorBody: ResponseCodable {
    let ok: Bool
    let error: String

    init(_ error: String) {
        self.ok = false
        self.error = error
    }
}

/// Builds the HTTP router.
enum HTTPRoutes {
    static func router(
        pool: ConnectionPool, configuration: AppConfiguration, readiness: ReadinessProbe? = nil
    ) -> Router<BasicRequestContext> {
        let readiness = readiness ?? ReadinessProbe(configuration: pool.configuration, logger: Logger(label: "orchestrator.readiness"))
        _ = Telemetry.registry
        let router = Router()
        // Request counts and durations by route template (`http.route`), for /metrics/prometheus.
        router.add(middleware: MetricsMiddleware())
        WebhookRoutes(store: WebhookStore(pool: pool), configuration: configuration).register(on: router)
        AdminRoutes(pool: pool, configuration: configuration).register(on: router)
        router.get("/health") { _, _ in
            HealthBody(status: "ok", service: "orchestrator")
        }
        router.get("/health/ready") { _, context -> Response in
            if let error = await readiness.check() {
                context.logger.warning("readiness check failed", metadata: ["db.error": "\(error)"])
                return json(ErrorBody("database unavailable"), status: .serviceUnavailable)
            }
            return json(ReadyBody(status: "ready", database: "ok"))
        }
        return router
    }
}

extension Request {
    /// A header by case-insensitive name (without naming HTTPTypes' field type).
    func header(named name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.canonicalName == wanted }?.value
    }
}

/// A JSON response with an explicit status (never a bodiless error).
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    let data = (try? JSONEncoder().encode(value)) ?? Data(#"{"ok":false,"error":"response encoding failed"}"#.utf8)
    return Response(
        status: status,
        headers: [.contentType: "application/json; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
