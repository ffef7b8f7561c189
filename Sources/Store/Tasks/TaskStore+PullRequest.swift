import Foundation

/// What a merge waiting on Gitea knows about its task now (`TaskStore.mergeWait`).
public struct MergeWait: Sendable, Equatable {
    /// The PR head the task holds (moved only forward: see `TaskStore.recordPullRequestEvent`).
    public let headSHA: String?
    /// The head's combined CI state from the statuses received (`pending`, `success`, `failure`; nil: none yet).
    public let headCIState: CIState?
    /// How long the merge job has existed, by the database clock: a postponed job keeps its row,
    /// so this is the whole wait, whichever replicas ran it.
    public let waited: Duration
}

// MARK: - Merging through Gitea

extension TaskStore {
    /// Records the head a live read of the task's pull request found, ordered like its webhooks
    /// by Gitea's `updated_at` (`pr_updated_at`): a read older than the last event applied changes
    /// nothing, so the head never moves backwards. At the same second the read wins: Gitea stamps
    /// whole seconds, a read is current when made, and a head it gets wrong is refused by the
    /// merge's `head_commit_id` and read again. Returns whether it was applied.
    @discardableResult
    public func recordPullRequestRead(
        workItem: String, number: Int, headSHA: String, updatedAt: Date
    ) async throws -> Bool {
        try await pool.query(
            """
            UPDATE tasks SET head_sha = $3, pr_updated_at = $4, head_ci_state = combined_ci_state(repo, $3),
                   updated_at = now()
            WHERE work_item = $1 AND pr_number = $2 AND (pr_updated_at IS NULL OR pr_updated_at <= $4)
            """,
            [workItem, number, headSHA, updatedAt]
        ).affectedRows == 1
    }

    /// The task's PR head, its CI state and how long merge job `jobID` has waited, read together.
    public func mergeWait(workItem: String, jobID: Int64) async throws -> MergeWait? {
        try await pool.query(
            """
            SELECT t.head_sha, t.head_ci_state, extract(epoch FROM now() - j.created_at)::float8 AS waited
            FROM tasks t, jobs j WHERE t.work_item = $1 AND j.id = $2
            """,
            [workItem, jobID]
        ).first.map { row in
            MergeWait(
                headSHA: try row.decode("head_sha"), headCIState: try row.decode("head_ci_state"),
                waited: .seconds(try row.decode("waited", as: Double.self)))
        }
    }
}
