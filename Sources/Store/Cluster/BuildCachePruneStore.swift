import Foundation

/// The `build_cache_prunes` row: the build-cache pruner's last run, whichever replica led then, so
/// every replica's `/queue` shows the same.
public struct BuildCachePruneStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// The last run, for `/queue`.
    public struct Run: Sendable, Equatable, Encodable {
        public let replica: String
        public let lastRunAt: Date
        public let durationMs: Int64
        /// nil when the command could not start.
        public let exitStatus: Int?
        /// nil when the output did not say.
        public let reclaimedBytes: Int64?
        public let totalReclaimedBytes: Int64
        public let runs: Int
        public let lastError: String?
    }

    /// Records a run of the prune command.
    public func record(
        replicaID: String, duration: Duration, exitStatus: Int?, reclaimedBytes: Int64?, error: String?
    ) async throws {
        try await pool.query(
            """
            INSERT INTO build_cache_prunes (id, replica_id, last_run_at, duration_ms, exit_status, reclaimed_bytes,
                total_reclaimed_bytes, runs, last_error)
            VALUES (1, $1, now(), $2, $3, $4, coalesce($4::bigint, 0), 1, $5)
            ON CONFLICT (id) DO UPDATE SET replica_id = excluded.replica_id, last_run_at = now(),
                duration_ms = excluded.duration_ms, exit_status = excluded.exit_status,
                reclaimed_bytes = excluded.reclaimed_bytes,
                total_reclaimed_bytes = build_cache_prunes.total_reclaimed_bytes + excluded.total_reclaimed_bytes,
                runs = build_cache_prunes.runs + 1, last_error = excluded.last_error
            """,
            [
                replicaID, Int64(duration.seconds * 1000), exitStatus, reclaimedBytes,
                error.map { String($0.prefix(2000)) },
            ])
    }

    /// The last run; nil before the first.
    public func lastRun() async throws -> Run? {
        try await pool.query(
            """
            SELECT replica_id, last_run_at, duration_ms, exit_status, reclaimed_bytes, total_reclaimed_bytes, runs,
                last_error
            FROM build_cache_prunes WHERE id = 1
            """
        ).first.map {
            Run(
                replica: try $0.decode("replica_id"), lastRunAt: try $0.decode("last_run_at"),
                durationMs: try $0.decode("duration_ms"), exitStatus: try $0.decode("exit_status"),
                reclaimedBytes: try $0.decode("reclaimed_bytes"),
                totalReclaimedBytes: try $0.decode("total_reclaimed_bytes"), runs: try $0.decode("runs"),
                lastError: try $0.decode("last_error"))
        }
    }
}
