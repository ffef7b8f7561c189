import Foundation

/// The `diag_executions` table written by the opt-in diagnostic jobs (`ORCH_DIAGNOSTIC_JOBS=1`).
///
/// Each execution of a `diag.record` job leaves one row, which lets tests and operators check
/// that a job ran exactly once across replicas. The table is created on demand, not by a
/// migration, because production schemas do not need it.
public struct DiagnosticStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Creates `diag_executions` if missing. Under the migrator's lock: two replicas starting at
    /// once would otherwise both pass IF NOT EXISTS and collide creating it (42P07/23505).
    public func prepare() async throws {
        try await pool.withAdvisoryLock(AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.migrations, key: 1)) { _ in
            try await pool.withConnection { connection in
                try await connection.execute(
                    """
                    CREATE TABLE IF NOT EXISTS diag_executions (
                        job_id bigint NOT NULL, attempt integer NOT NULL, replica_id text NOT NULL,
                        started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL DEFAULT now())
                    """)
            }
        }
    }

    /// Records one execution.
    public func recordExecution(jobID: Int64, attempt: Int, replicaID: String, startedAt: Date) async throws {
        try await pool.query(
            "INSERT INTO diag_executions (job_id, attempt, replica_id, started_at) VALUES ($1, $2, $3, $4)",
            [jobID, attempt, replicaID, startedAt])
    }
}
