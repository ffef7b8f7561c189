import Hummingbird
import Store
import Workers

/// `GET /metrics`: the versioned JSON envelope (see `MetricsReport`).
struct MetricsRoutes: Sendable {
    let pool: ConnectionPool
    let maxConcurrency: Int

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/metrics") { request, context in
            let report = try await MetricsReport.read(from: pool, maxConcurrency: maxConcurrency)
            return try context.responseEncoder.encode(report, from: request, context: context)
        }
        return routes
    }
}
