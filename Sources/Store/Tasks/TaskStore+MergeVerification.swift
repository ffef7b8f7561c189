import Foundation

/// Where the verification of a task's merge commit stands (`TaskStore.beginMergeVerification`).
public struct MergeVerification: Sendable, Equatable {
    /// The merge commit's combined CI state from the statuses received (nil: none yet).
    public let ciState: CIState?
    /// How long the verification has run, by the database clock, whichever replicas ran it.
    public let elapsed: Duration
}

// MARK: - Verifying the merge commit

extension TaskStore {
    /// Records the task's merge commit before its CI is awaited, and starts the verification
    /// window unless it already runs for that commit (a job retried after its replica died goes
    /// on with the window it had). Status webhooks keep `merge_ci_state` current from here on.
    public func beginMergeVerification(workItem: String, sha: String) async throws {
        try await pool.query(
            """
            UPDATE tasks SET merge_verify_since = CASE WHEN merge_sha = $2 AND merge_verify_since IS NOT NULL
                                                     THEN merge_verify_since ELSE now() END,
                   merge_sha = $2, merge_ci_state = combined_ci_state(repo, $2), updated_at = now()
            WHERE work_item = $1
            """,
            [workItem, sha])
    }

    /// The merge commit's CI state and how long its verification has run.
    public func mergeVerification(workItem: String) async throws -> MergeVerification? {
        try await pool.query(
            """
            SELECT merge_ci_state, extract(epoch FROM now() - coalesce(merge_verify_since, now()))::float8 AS elapsed
            FROM tasks WHERE work_item = $1
            """,
            [workItem]
        ).first.map { row in
            MergeVerification(
                ciState: try row.decode("merge_ci_state"), elapsed: .seconds(try row.decode("elapsed", as: Double.self))
            )
        }
    }

    /// Ends the verification window, in the caller's transaction (the hold that ends it): a
    /// retry after the hold verifies with a whole new window.
    public static func endMergeVerification(workItem: String, on connection: Connection) async throws {
        try await connection.query(
            "UPDATE tasks SET merge_verify_since = NULL, updated_at = now() WHERE work_item = $1", [workItem])
    }
}
