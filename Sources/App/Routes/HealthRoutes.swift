import Hummingbird
import Store

/// `GET /health` (the process is up) and `GET /health/ready` (the database answers); no token.
struct HealthRoutes: Sendable {
    let readiness: ReadinessProbe

    /// `{"status":"ok","service":"orchestrator"}`: the seed service's liveness body.
    struct Health: ResponseCodable {
        let status: String
        let service: String
    }

    /// The readiness body.
    struct Ready: ResponseCodable {
        let status: String
        let database: String
    }

    var endpoints: RouteCollection<BasicRequestContext> {
        let routes = RouteCollection(context: BasicRequestContext.self)
        routes.get("/health") { _, _ in
            Health(status: "ok", service: "orchestrator")
        }
        routes.get("/health/ready") { _, context -> Response in
            if let error = await readiness.check() {
                context.logger.warning("readiness check failed", metadata: ["db.error": "\(error)"])
                return json(ErrorBody("database unavailable"), status: .serviceUnavailable)
            }
            return json(Ready(status: "ready", database: "ok"))
        }
        return routes
    }
}
