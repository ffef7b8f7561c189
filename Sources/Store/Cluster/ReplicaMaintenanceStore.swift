import Foundation

/// The `replica_maintenance_runs` table: what each every-replica reaper duty (pruning the files on
/// a replica's own disk, reclaiming its own leases at start) last did, per replica name and host.
public struct ReplicaMaintenanceStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// One replica's record of one duty (in `/queue` under the duty's name, so it is not repeated).
    public struct Run: Sendable, Equatable, Encodable {
        public let duty: String
        /// The replica's stable name (`ORCH_REPLICA_NAME`) and host: whose disk the duty cleaned.
        public let name: String
        public let host: String
        /// The process (`replicas.id`) that ran it last.
        public let replicaID: String
        public let lastRunAt: Date
        public let lastAffected: Int
        public let totalAffected: Int
        public let runs: Int
        public let lastError: String?

        enum CodingKeys: String, CodingKey {
            case replicaID = "replica"
            case name, host, lastRunAt, lastAffected, totalAffected, runs, lastError
        }
    }

    /// Records a run of `duty` by the replica `name` on `host` (now process `replicaID`): what it
    /// removed or reclaimed, or the error it failed with.
    public func record(
        duty: String, name: String, host: String, replicaID: String, affected: Int, error: String?
    ) async throws {
        try await pool.query(
            """
            INSERT INTO replica_maintenance_runs
                (duty, replica_name, host, replica_id, last_run_at, last_affected, total_affected, runs, last_error)
            VALUES ($1, $2, $3, $4, now(), $5::int, $5::int, 1, $6)
            ON CONFLICT (duty, replica_name, host) DO UPDATE SET replica_id = excluded.replica_id, last_run_at = now(),
                last_affected = excluded.last_affected,
                total_affected = replica_maintenance_runs.total_affected + excluded.last_affected,
                runs = replica_maintenance_runs.runs + 1, last_error = excluded.last_error
            """,
            [duty, name, host, replicaID, affected, error])
    }

    /// Every record, by duty, then replica name and host.
    public func runs() async throws -> [Run] {
        try await pool.query(
            """
            SELECT duty, replica_name, host, replica_id, last_run_at, last_affected, total_affected, runs, last_error
            FROM replica_maintenance_runs ORDER BY duty, replica_name, host
            """
        ).rows.map {
            Run(
                duty: try $0.decode("duty"), name: try $0.decode("replica_name"), host: try $0.decode("host"),
                replicaID: try $0.decode("replica_id"), lastRunAt: try $0.decode("last_run_at"),
                lastAffected: try $0.decode("last_affected"), totalAffected: try $0.decode("total_affected"),
                runs: try $0.decode("runs"), lastError: try $0.decode("last_error"))
        }
    }
}
