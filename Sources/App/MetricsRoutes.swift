import Foundation
import Hummingbird
import Metrics
import Store

/// `GET /metrics` (the versioned JSON envelope) and `GET /metrics/prometheus` (text exposition).
extension AdminRoutes {
    /// Bumped when a field of the envelope changes meaning or disappears (adding one does not).
    static let metricsSchemaVersion = 1

    struct MetricsEnvelope: Encodable {
        struct Stage: Encodable {
            let stage: String
            let tasks: [String: Int]
            let exits: Int
            let seconds_spent: Double
            let avg_seconds: Double?
        }
        struct Queue: Encodable {
            let counts: [String: Int]
            let by_kind: [String: [String: Int]]
            let oldest_ready_seconds: Double?
            let max_concurrency: Int
        }
        struct Tokens: Encodable {
            let input: Int
            let output: Int
            let cache_read: Int
            let cache_write: Int
        }
        struct Cost: Encodable {
            let runs: Int
            let total_usd: Double
            let tokens: Tokens
        }
        let schema_version: Int
        let generated_at: String
        let clk_tck: Int
        let stages: [Stage]
        let queue: Queue
        /// Live agent runs on this replica; agents arrive with the pipeline (issue #4).
        let agents: [String]
        let cost: Cost
    }

    func registerMetrics(on router: Router<BasicRequestContext>) {
        router.get("/metrics") { request, context in
            await admin(request, context) { try await metrics() }
        }
        router.get("/metrics/prometheus") { request, context in
            if configuration.metricsPublic {
                return await prometheus(context)
            }
            return await admin(request, context) { await prometheus(context) }
        }
    }

    private func metrics() async throws -> Response {
        let figures = MetricsStore(pool: pool)
        let stages = try await figures.stages()
        let queue = try await figures.queue()
        let counts = try await jobs.countsByStatus()
        return json(MetricsEnvelope(
            schema_version: Self.metricsSchemaVersion,
            generated_at: iso(Date()),
            clk_tck: sysconf(Int32(_SC_CLK_TCK)),
            stages: stages.map {
                .init(stage: $0.stage, tasks: $0.tasks, exits: $0.exits, seconds_spent: ($0.secondsSpent * 1000).rounded() / 1000,
                      avg_seconds: $0.exits > 0 ? (($0.secondsSpent / Double($0.exits)) * 1000).rounded() / 1000 : nil)
            },
            queue: .init(
                counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                by_kind: Dictionary(uniqueKeysWithValues: queue.kinds.map { ($0.kind, $0.counts) }),
                oldest_ready_seconds: queue.oldestReadySeconds.map { ($0 * 1000).rounded() / 1000 },
                max_concurrency: configuration.maxConcurrency),
            agents: [],
            cost: .init(runs: 0, total_usd: 0, tokens: .init(input: 0, output: 0, cache_read: 0, cache_write: 0))))
    }

    /// Refreshes the queue-depth gauges from the database, then renders every metric. A database
    /// that does not answer leaves the gauges at their last values: the scrape still succeeds.
    private func prometheus(_ context: BasicRequestContext) async -> Response {
        do {
            for (status, count) in try await jobs.countsByStatus() {
                Gauge(label: "orch_queue_jobs", dimensions: [("status", status.rawValue)]).record(count)
            }
        } catch {
            context.logger.warning("queue depth not refreshed for the scrape", metadata: ["db.error": "\(error)"])
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: Telemetry.exposition())))
    }
}
