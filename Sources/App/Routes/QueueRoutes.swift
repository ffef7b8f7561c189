import Hummingbird
import Store
import Workers

/// `GET /queue`: the queue, the replicas and one block per subsystem (see `QueueReport`).
struct QueueRoutes: Sendable {
    let pool: ConnectionPool
    let maxConcurrency: Int
    let pollInterval: Duration
    /// The subsystems' blocks, in the order the report lists them.
    let blocks: [any QueueReportBlock]

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/queue") { request, context in
            let report = try await QueueReport.read(
                from: pool, maxConcurrency: maxConcurrency, pollInterval: pollInterval, blocks: blocks)
            return try context.responseEncoder.encode(report, from: request, context: context)
        }
        return routes
    }
}
