import Foundation

/// Reading jobs for the admin API and reports.
extension JobStore {
    /// One job by id.
    public func job(id: Int64) async throws -> Job? {
        try await pool.query("SELECT \(Job.columns) FROM jobs WHERE id = $1", [id]).first.map(Job.init(row:))
    }

    /// Job counts by status (every status present, zero when none).
    public func countsByStatus() async throws -> [JobStatus: Int] {
        var counts = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0, 0) })
        for row in try await pool.query("SELECT status, count(*) AS n FROM jobs GROUP BY status").rows {
            counts[try row.decode("status", as: JobStatus.self)] = try row.decode("n")
        }
        return counts
    }

    /// Jobs about one task (their payload names its `work_item`), newest first.
    public func jobs(workItem: String, limit: Int = 50) async throws -> [Job] {
        try await pool.query(
            "SELECT \(Job.columns) FROM jobs WHERE payload->>'work_item' = $1 ORDER BY id DESC LIMIT $2",
            [workItem, limit]
        ).rows.map(Job.init(row:))
    }

    /// The most recently created jobs.
    public func recent(limit: Int = 10) async throws -> [Job] {
        try await pool.query("SELECT \(Job.columns) FROM jobs ORDER BY id DESC LIMIT $1", [limit]).rows.map(
            Job.init(row:))
    }
}
