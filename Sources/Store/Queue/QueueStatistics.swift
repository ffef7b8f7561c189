import Foundation

/// Read-only figures about one queue, used by the benchmark and diagnostics.
public struct QueueStatistics: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Enqueue→claim latency percentiles in milliseconds, from database timestamps
    /// (`claimed_at − run_at`) of jobs in `queue` claimed at or after `since`.
    public func claimLatencyMilliseconds(
        queue: String, since: Date? = nil
    ) async throws -> (count: Int, p50: Double, p95: Double, p99: Double, max: Double) {
        let row = try await pool.query(
            """
            SELECT count(*) AS n,
                   coalesce(percentile_cont(0.50) WITHIN GROUP (ORDER BY ms), 0) AS p50,
                   coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), 0) AS p95,
                   coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), 0) AS p99,
                   coalesce(max(ms), 0) AS max
            FROM (SELECT extract(epoch FROM claimed_at - run_at) * 1000 AS ms FROM jobs
                  WHERE queue = $1 AND claimed_at IS NOT NULL AND ($2::timestamptz IS NULL OR claimed_at >= $2)) t
            """,
            [queue, since]
        ).first!
        return (
            try row.decode("n"), try row.decode("p50"), try row.decode("p95"), try row.decode("p99"),
            try row.decode("max")
        )
    }

    /// Completed jobs in `queue` and the span from the first claim to the last completion, in seconds.
    public func completionSpan(queue: String) async throws -> (completed: Int, seconds: Double) {
        let row = try await pool.query(
            """
            SELECT count(*) AS n, coalesce(extract(epoch FROM max(finished_at) - min(claimed_at)), 0)::float8 AS span
            FROM jobs WHERE queue = $1 AND status = 'completed'
            """,
            [queue]
        ).first!
        return (try row.decode("n"), try row.decode("span"))
    }

    /// Jobs in `queue` not yet finished.
    public func unfinished(queue: String) async throws -> Int {
        try await pool.query(
            "SELECT count(*) AS n FROM jobs WHERE queue = $1 AND status IN ('queued', 'running')", [queue]
        ).first!.decode("n")
    }

    /// Whether `queue` has a queued or running job; cheap enough to poll (both partial indexes serve it).
    public func hasUnfinished(queue: String) async throws -> Bool {
        try await pool.query(
            """
            SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'queued' AND queue = $1)
                OR EXISTS (SELECT 1 FROM jobs WHERE status = 'running' AND queue = $1) AS pending
            """,
            [queue]
        ).first!.decode("pending")
    }

    /// Jobs in `queue` completed.
    public func completed(queue: String) async throws -> Int {
        try await pool.query("SELECT count(*) AS n FROM jobs WHERE queue = $1 AND status = 'completed'", [queue]).first!
            .decode("n")
    }

    /// Deletes every job of `queue` (benchmark clean-up).
    public func deleteQueue(_ queue: String) async throws {
        try await pool.query("DELETE FROM jobs WHERE queue = $1", [queue])
    }
}
