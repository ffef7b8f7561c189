import Foundation

/// Merge lease and verification figures (the `/queue` `merge_verify` block): the leases held
/// now, the merge commits whose CI is awaited, the merge jobs waiting for a lease, and the tasks
/// held at merge with their last reason.
public struct MergeVerifySummary: Sendable, Equatable, Encodable {
    /// A merge commit whose CI the merge stage is waiting for.
    public struct Verification: Sendable, Equatable, Encodable {
        public let workItem: String
        public let repo: String?
        public let mergeSHA: String
        /// nil: no status received yet.
        public let ciState: CIState?
        public let since: Date?
    }

    /// A task held at merge, with the reason of its last transition.
    public struct Hold: Sendable, Equatable, Encodable {
        public let workItem: String
        public let repo: String?
        public let reason: String?
        public let at: Date
    }

    /// Live leases only: a row whose holder died is not listed.
    public let leases: [MergeLeaseStore.Lease]
    public let verifying: [Verification]
    /// Merge jobs postponed because their repository's lease was taken.
    public let waitingJobs: Int
    public let holds: [Hold]
}

extension MergeLeaseStore {
    /// The `merge_verify` figures now; at most `limit` holds, newest first.
    public func summary(holds limit: Int = 20) async throws -> MergeVerifySummary {
        let verifying = try await pool.query(
            """
            SELECT work_item, repo, merge_sha, merge_ci_state, merge_verify_since FROM tasks
            WHERE stage = 'merge' AND status = 'active' AND merge_sha IS NOT NULL
              AND merge_ci_state IS DISTINCT FROM 'success'
            ORDER BY merge_verify_since NULLS LAST, work_item
            """
        ).rows.map {
            MergeVerifySummary.Verification(
                workItem: try $0.decode("work_item"), repo: try $0.decode("repo"), mergeSHA: try $0.decode("merge_sha"),
                ciState: try $0.decode("merge_ci_state"), since: try $0.decode("merge_verify_since"))
        }
        let holds = try await pool.query(
            """
            SELECT t.work_item, t.repo, e.reason, e.at FROM tasks t
            JOIN LATERAL (SELECT reason, at FROM task_events WHERE task_id = t.id ORDER BY id DESC LIMIT 1) e ON true
            WHERE t.stage = 'merge' AND t.status = 'held'
            ORDER BY e.at DESC LIMIT $1
            """,
            [limit]
        ).rows.map {
            MergeVerifySummary.Hold(
                workItem: try $0.decode("work_item"), repo: try $0.decode("repo"), reason: try $0.decode("reason"),
                at: try $0.decode("at"))
        }
        return MergeVerifySummary(
            leases: try await live(), verifying: verifying, waitingJobs: try await waitingJobs(), holds: holds)
    }
}
