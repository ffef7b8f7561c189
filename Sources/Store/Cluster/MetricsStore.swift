import Foundation

/// Read-only figures for `GET /metrics` and the Prometheus gauges, computed from the tables.
public struct MetricsStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Tasks in one stage, and how long tasks spend in it.
    public struct StageFigures: Sendable, Equatable {
        public let stage: String
        /// Tasks now in this stage, by status.
        public let tasks: [String: Int]
        /// Times a task left this stage (to another stage).
        public let exits: Int
        /// Seconds tasks spent in this stage over all their visits, finished visits only.
        public let secondsSpent: Double
    }

    /// Per-stage figures, in pipeline order, every stage present.
    ///
    /// Time in a stage comes from `task_events`: the time between two consecutive events of a task
    /// (or its creation and its first event) was spent in the earlier event's `to_stage`, which is
    /// the later event's `from_stage`.
    public func stages() async throws -> [StageFigures] {
        var tasks: [String: [String: Int]] = [:]
        for row in try await pool.query("SELECT stage, status, count(*) AS n FROM tasks GROUP BY stage, status").rows {
            tasks[try row.decode("stage"), default: [:]][try row.decode("status")] = try row.decode("n")
        }
        var spent: [String: (exits: Int, seconds: Double)] = [:]
        for row in try await pool.query(
            """
            SELECT from_stage AS stage,
                   count(*) FILTER (WHERE to_stage <> from_stage) AS exits,
                   coalesce(sum(extract(epoch FROM at - previous)), 0)::float8 AS seconds
            FROM (SELECT e.from_stage, e.to_stage, e.at,
                         coalesce(lag(e.at) OVER (PARTITION BY e.task_id ORDER BY e.id), t.created_at) AS previous
                  FROM task_events e JOIN tasks t ON t.id = e.task_id) visits
            GROUP BY from_stage
            """
        ).rows {
            spent[try row.decode("stage")] = (try row.decode("exits"), try row.decode("seconds"))
        }
        return TaskStage.allCases.map { stage in
            StageFigures(
                stage: stage.rawValue, tasks: tasks[stage.rawValue] ?? [:],
                exits: spent[stage.rawValue]?.exits ?? 0, secondsSpent: spent[stage.rawValue]?.seconds ?? 0)
        }
    }

    /// Jobs of one kind, by status.
    public struct KindFigures: Sendable, Equatable {
        public let kind: String
        public let counts: [String: Int]
    }

    /// Queue figures: jobs by kind and status, and the age of the oldest job ready to run.
    public func queue() async throws -> QueueFigures {
        var kinds: [String: [String: Int]] = [:]
        // Every status present, zero when no job has it; from the same rows as the kinds.
        var byStatus = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0.rawValue, 0) })
        for row in try await pool.query(
            "SELECT kind, status, count(*) AS n FROM jobs GROUP BY kind, status ORDER BY kind"
        ).rows {
            let status: String = try row.decode("status")
            let count: Int = try row.decode("n")
            kinds[try row.decode("kind"), default: [:]][status] = count
            byStatus[status, default: 0] += count
        }
        let oldest: Double? = try await pool.query(
            """
            SELECT extract(epoch FROM now() - min(run_at))::float8 AS age FROM jobs WHERE status = 'queued' AND run_at <= now()
            """
        ).first!.decode("age")
        return QueueFigures(
            kinds: kinds.keys.sorted().map { KindFigures(kind: $0, counts: kinds[$0]!) }, byStatus: byStatus,
            oldestReadySeconds: oldest)
    }
}
