import Hummingbird
import Logging
import Metrics
import Store

/// `GET /metrics/prometheus`: the Prometheus text exposition. Generic over the context because
/// `ORCH_METRICS_PUBLIC` moves it out of the admin group.
struct PrometheusRoutes: Sendable {
    let jobs: JobStore
    let tasks: TaskStore

    func endpoints<Context: RequestContext>(context: Context.Type) -> RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("/metrics/prometheus") { _, context in
            await exposition(logger: context.logger)
        }
        return routes
    }

    /// Refreshes the queue-depth and budget gauges from the database, then renders every metric. A database
    /// that does not answer leaves the gauges at their last values: the scrape still succeeds.
    private func exposition(logger: Logger) async -> Response {
        do {
            for (status, count) in try await jobs.countsByStatus() {
                Gauge(label: "orch_queue_jobs", dimensions: [("status", status.rawValue)]).record(count)
            }
            // What agents spent today (UTC), per repository and in total, against `budgets:`.
            let spend = try await tasks.spendToday()
            for (repo, usd) in spend {
                Gauge(label: "orch_budget_spent_today_usd", dimensions: [("repo", repo)]).record(usd)
            }
            Gauge(label: "orch_budget_spent_today_usd", dimensions: [("repo", "all")]).record(
                spend.map(\.usd).reduce(0, +))
            Gauge(label: "orch_budget_paused_tasks").record(try await tasks.pausedForBudget().count)
        } catch {
            logger.warning("queue depth not refreshed for the scrape", metadata: ["db.error": "\(error)"])
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: Telemetry.exposition())))
    }
}
