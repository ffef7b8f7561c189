import Foundation
import Hummingbird
import Metrics
import Store
import Workers

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
            /// The most recent runs (up to 50), each with its cost (null = unknown).
            let recent_runs: [RunCost]
        }
        let schema_version: Int
        let generated_at: String
        let clk_tck: Int
        let stages: [Stage]
        let queue: Queue
        struct LiveAgent: Encodable {
            let run_id: Int64
            let work_item: String?
            let stage: String?
            let role: String
            let replica: String
            let host: String
            let pid: Int?
            let runtime_seconds: Double
            /// User + system CPU of the agent process so far, in clock ticks (`clk_tck` per second);
            /// null for a run on another host or whose process is gone.
            let cpu_ticks: Int64?
        }
        struct RunCost: Encodable {
            let run_id: Int64
            let work_item: String?
            let stage: String?
            let cost_usd: Double?
            let input_tokens: Int?
            let output_tokens: Int?
        }
        /// Live agent runs (CPU from `/proc` for runs on this host).
        let agents: [LiveAgent]
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
        return json(MetricsEnvelope(
            schema_version: Self.metricsSchemaVersion,
            generated_at: iso(Date()),
            clk_tck: sysconf(Int32(_SC_CLK_TCK)),
            stages: stages.map {
                .init(stage: $0.stage, tasks: $0.tasks, exits: $0.exits, seconds_spent: rounded($0.secondsSpent, places: 3),
                      avg_seconds: $0.exits > 0 ? rounded($0.secondsSpent / Double($0.exits), places: 3) : nil)
            },
            queue: .init(
                counts: queue.byStatus,
                by_kind: Dictionary(uniqueKeysWithValues: queue.kinds.map { ($0.kind, $0.counts) }),
                oldest_ready_seconds: queue.oldestReadySeconds.map { rounded($0, places: 3) },
                max_concurrency: configuration.maxConcurrency),
            agents: try await liveAgents(),
            cost: try await cost()))
    }

    private func liveAgents() async throws -> [MetricsEnvelope.LiveAgent] {
        let host = ProcessInfo.processInfo.hostName
        let now = Date()
        return try await AgentRunStore(pool: pool).live().map { run in
            // /proc only speaks for this host, and only for the very process (pid + start time).
            let local = run.host == host && run.pid.flatMap(ProcStat.startTime) == run.processStart
            return .init(
                run_id: run.id, work_item: run.workItem, stage: run.stage, role: run.role, replica: run.replicaID, host: run.host,
                pid: run.pid, runtime_seconds: rounded(now.timeIntervalSince(run.startedAt), places: 1),
                cpu_ticks: local ? run.pid.flatMap(ProcStat.cpuTicks) : nil)
        }
    }

    private func cost() async throws -> MetricsEnvelope.Cost {
        let store = AgentRunStore(pool: pool)
        let totals = try await store.totals()
        return .init(
            runs: totals.runs, total_usd: rounded(totals.costUSD, places: 6),
            tokens: .init(input: totals.input, output: totals.output, cache_read: totals.cacheRead, cache_write: totals.cacheWrite),
            recent_runs: try await store.recent(limit: 50).map {
                .init(run_id: $0.id, work_item: $0.workItem, stage: $0.stage, cost_usd: $0.usage.costUSD,
                      input_tokens: $0.usage.inputTokens, output_tokens: $0.usage.outputTokens)
            })
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
