import Foundation

/// The `disk_monitor` table: each replica's last measurement per path, and whether the path is
/// alerted full. The flag lives here so an alert and its all-clear are raised once each across
/// restarts too.
public struct DiskMonitorStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// One path's last measurement, for `/queue`.
    public struct Measurement: Sendable, Equatable, Encodable {
        public let host: String
        public let path: String
        public let replica: String
        public let usedPercent: Double
        public let totalBytes: Int64
        public let freeBytes: Int64
        public let threshold: Double
        public let above: Bool
        public let measuredAt: Date
        public let lastError: String?
    }

    /// Records a measurement and applies ``DiskFill`` to the stored flag under the row's lock, so
    /// two replicas on one host (one path) alert once between them. Returns the change to alert.
    public func record(
        host: String, path: String, replicaID: String, usedPercent: Double, totalBytes: Int64, freeBytes: Int64,
        threshold: Double, hysteresis: Double
    ) async throws -> DiskFill.Change? {
        try await pool.withTransaction { connection in
            try await connection.query(
                """
                INSERT INTO disk_monitor (host, path, replica_id, used_percent, total_bytes, free_bytes, threshold)
                VALUES ($1, $2, $3, 0, 0, 0, $4) ON CONFLICT (host, path) DO NOTHING
                """,
                [host, path, replicaID, threshold])
            let wasAbove: Bool = try await connection.query(
                "SELECT above FROM disk_monitor WHERE host = $1 AND path = $2 FOR UPDATE", [host, path]
            ).first!.decode("above")
            let decision = DiskFill.decide(
                wasAbove: wasAbove, usedPercent: usedPercent, threshold: threshold, hysteresis: hysteresis)
            try await connection.query(
                """
                UPDATE disk_monitor SET replica_id = $3, used_percent = $4, total_bytes = $5, free_bytes = $6,
                    threshold = $7, above = $8, measured_at = now(), last_error = NULL,
                    changed_at = CASE WHEN above <> $8 THEN now() ELSE changed_at END
                WHERE host = $1 AND path = $2
                """,
                [host, path, replicaID, usedPercent, totalBytes, freeBytes, threshold, decision.above])
            return decision.change
        }
    }

    /// Records that a path could not be measured (it keeps its last figures and flag).
    public func recordError(
        host: String, path: String, replicaID: String, threshold: Double, error: String
    ) async throws {
        try await pool.query(
            """
            INSERT INTO disk_monitor (host, path, replica_id, used_percent, total_bytes, free_bytes, threshold, last_error)
            VALUES ($1, $2, $3, 0, 0, 0, $4, $5)
            ON CONFLICT (host, path) DO UPDATE SET replica_id = $3, measured_at = now(), last_error = $5
            """,
            [host, path, replicaID, threshold, String(error.prefix(2000))])
    }

    /// Every path's last measurement, by host and path.
    public func measurements() async throws -> [Measurement] {
        try await pool.query(
            """
            SELECT host, path, replica_id, used_percent, total_bytes, free_bytes, threshold, above, measured_at, last_error
            FROM disk_monitor ORDER BY host, path
            """
        ).rows.map {
            Measurement(
                host: try $0.decode("host"), path: try $0.decode("path"), replica: try $0.decode("replica_id"),
                usedPercent: try $0.decode("used_percent"), totalBytes: try $0.decode("total_bytes"),
                freeBytes: try $0.decode("free_bytes"), threshold: try $0.decode("threshold"),
                above: try $0.decode("above"), measuredAt: try $0.decode("measured_at"),
                lastError: try $0.decode("last_error"))
        }
    }
}
