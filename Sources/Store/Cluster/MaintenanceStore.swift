import Foundation

/// The `maintenance_runs` table: what each leader duty last did.
public struct MaintenanceStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// One duty's record (in `/queue` under its duty's name, so the name is not repeated).
    public struct Run: Sendable, Equatable, Encodable {
        public let duty: String
        public let replicaID: String
        public let lastRunAt: Date
        public let lastAffected: Int
        public let totalAffected: Int
        public let runs: Int
        public let lastError: String?

        enum CodingKeys: String, CodingKey {
            case replicaID = "replica"
            case lastRunAt, lastAffected, totalAffected, runs, lastError
        }
    }

    /// Records a run of `duty` by `replicaID`: rows it changed, or the error it failed with.
    public func record(duty: String, replicaID: String, affected: Int, error: String?) async throws {
        try await pool.query(
            """
            INSERT INTO maintenance_runs (duty, replica_id, last_run_at, last_affected, total_affected, runs, last_error)
            VALUES ($1, $2, now(), $3::int, $3::int, 1, $4)
            ON CONFLICT (duty) DO UPDATE SET replica_id = excluded.replica_id, last_run_at = now(),
                last_affected = excluded.last_affected, total_affected = maintenance_runs.total_affected + excluded.last_affected,
                runs = maintenance_runs.runs + 1, last_error = excluded.last_error
            """,
            [duty, replicaID, affected, error])
    }

    /// Every duty's record, by name.
    public func runs() async throws -> [Run] {
        try await pool.query(
            "SELECT duty, replica_id, last_run_at, last_affected, total_affected, runs, last_error FROM maintenance_runs ORDER BY duty"
        ).rows.map {
            Run(
                duty: try $0.decode("duty"), replicaID: try $0.decode("replica_id"),
                lastRunAt: try $0.decode("last_run_at"),
                lastAffected: try $0.decode("last_affected"), totalAffected: try $0.decode("total_affected"),
                runs: try $0.decode("runs"),
                lastError: try $0.decode("last_error"))
        }
    }
}
