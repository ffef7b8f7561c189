import Foundation

/// What Gitea and the orchestrator's own git say about a task's commits: its pull request, pushes
/// to its branch, its merge commit, and CI statuses.
extension TaskStore {
    /// What became of a Gitea `pull_request` or `push` delivery for a task.
    public enum DeliveryEffect: Sendable, Equatable {
        case applied
        case ignored(String)
    }

    /// Records a Gitea `pull_request` event on the task it is bound to: only the pull request the
    /// orchestrator opened or found (its number), in the task's own repository, from a head in
    /// that same repository (never a fork), and only when the delivery is newer (Gitea's
    /// `updated_at`) than the last one applied, so a replayed or late delivery cannot rewind the
    /// head. Anything else is ignored with the reason.
    public func recordPullRequestEvent(
        workItem: String, repo: String, headRepo: String?, number: Int, headSHA: String, mergeSHA: String?,
        updatedAt: Date?
    ) async throws -> DeliveryEffect {
        try await pool.withTransaction { connection in
            guard
                let row = try await connection.query(
                    "SELECT repo, pr_number, pr_updated_at, head_sha FROM tasks WHERE work_item = $1 FOR UPDATE",
                    [workItem]
                ).first,
                try row.decode("repo", as: String?.self) == repo
            else { return .ignored("no task \(workItem) in \(repo)") }
            guard headRepo == repo else {
                return .ignored("PR #\(number) comes from \(headRepo ?? "an unknown repository"), not \(repo) (a fork)")
            }
            let own: Int? = try row.decode("pr_number")
            guard own == number else {
                return .ignored(
                    "PR #\(number) is not \(workItem)'s pull request (\(own.map { "#\($0)" } ?? "none opened yet"))")
            }
            guard let updatedAt else { return .ignored("PR #\(number) event without updated_at: its order is unknown") }
            // Gitea stamps whole seconds: a delivery of the same second may add facts about the
            // same head (a merge), but never move the head.
            let knownHead: String? = try row.decode("head_sha")
            if let last: Date = try row.decode("pr_updated_at"),
                updatedAt < last || (updatedAt == last && headSHA != knownHead)
            {
                return .ignored(
                    "PR #\(number) event of \(updatedAt) is not newer than the last applied (\(last)): stale or replayed"
                )
            }
            try await connection.query(
                """
                UPDATE tasks SET head_sha = $2, merge_sha = coalesce($3, merge_sha), pr_updated_at = $4,
                       head_ci_state = combined_ci_state(repo, $2), merge_ci_state = combined_ci_state(repo, coalesce($3, merge_sha)),
                       updated_at = now()
                WHERE work_item = $1
                """,
                [workItem, headSHA, mergeSHA, updatedAt])
            return .applied
        }
    }

    /// Records the pull request the orchestrator opened or found for the task, with the head it
    /// just pushed, on the caller's connection (inside the stage outcome's transaction).
    public static func recordOwnPullRequest(
        workItem: String, number: Int, headSHA: String, on connection: Connection
    ) async throws {
        try await connection.query(
            """
            UPDATE tasks SET pr_number = $2, head_sha = $3, head_ci_state = combined_ci_state(repo, $3), updated_at = now()
            WHERE work_item = $1
            """,
            [workItem, number, headSHA])
    }

    /// Records a Gitea `push` to a task's branch: applied only when it continues the head the task
    /// knows (`before` is that head, or none is known yet), so a replayed or late delivery cannot
    /// move the head backwards. The orchestrator records its own pushes itself.
    public func recordPushEvent(
        workItem: String, repo: String, before: String?, after: String
    ) async throws -> DeliveryEffect {
        let result = try await pool.query(
            """
            UPDATE tasks SET head_sha = $4, head_ci_state = combined_ci_state(repo, $4), pushed_at = now(), updated_at = now()
            WHERE work_item = $1 AND repo = $2 AND (head_sha IS NULL OR head_sha = $3) AND head_sha IS DISTINCT FROM $4
            RETURNING id
            """,
            [workItem, repo, before, after])
        if result.affectedRows == 1 { return .applied }
        guard let task = try await task(workItem: workItem), task.repo == repo else {
            return .ignored("no task \(workItem) in \(repo)")
        }
        if task.headSHA == after { return .ignored("\(workItem) is already at \(after.prefix(12))") }
        return .ignored(
            "push \((before ?? "?").prefix(12))→\(after.prefix(12)) does not continue the known head "
                + "\((task.headSHA ?? "?").prefix(12)): stale or replayed")
    }

    /// Records the task branch's new head after the orchestrator pushed it, on the caller's
    /// connection (statuses already known for it count at once).
    public static func recordPush(
        workItem: String, repo: String, headSHA: String, on connection: Connection
    ) async throws {
        try await connection.query(
            """
            UPDATE tasks SET head_sha = $3, head_ci_state = combined_ci_state(repo, $3), pushed_at = now(), updated_at = now()
            WHERE work_item = $1 AND (repo = $2 OR repo IS NULL)
            """,
            [workItem, repo, headSHA])
    }

    /// Records the merge commit of the task's branch, on the caller's connection.
    public static func recordMerge(workItem: String, sha: String, on connection: Connection) async throws {
        try await connection.query(
            """
            UPDATE tasks SET merge_sha = $2, merge_ci_state = combined_ci_state(repo, $2), updated_at = now() WHERE work_item = $1
            """,
            [workItem, sha])
    }

    /// Wakes a task's merge job waiting for CI (postponed): it runs now and looks at the CI again.
    public func wakeMerge(workItem: String) async throws {
        try await pool.query(
            """
            WITH woken AS (
                UPDATE jobs SET run_at = now()
                WHERE status = 'queued' AND kind = $2 AND payload->>'work_item' = $1 AND payload->>'stage' = 'merge' AND run_at > now()
                RETURNING queue
            )
            SELECT pg_notify('orch_jobs', queue) FROM woken
            """,
            [workItem, Self.stageJobKind])
    }

    /// A task whose CI facts a commit status changed.
    public struct CIUpdate: Sendable, Equatable {
        public let workItem: String
        /// `head` or `merge`: which of the task's commits the status is for.
        public let commit: String
        /// The commit's combined state after this status.
        public let combinedState: CIState
    }

    /// Stores a Gitea commit status (a later status id for the same context wins; an older one
    /// arriving late changes nothing) and refreshes the combined CI state of every task whose PR
    /// head or merge commit is that sha, in one transaction. Returns the tasks it touched.
    public func recordCommitStatus(
        repo: String, sha: String, context: String, state: CIState, statusID: Int64, targetURL: String?,
        description: String?
    ) async throws -> [CIUpdate] {
        try await pool.withTransaction { connection in
            try await connection.query(
                """
                INSERT INTO commit_statuses (repo, sha, context, state, status_id, target_url, description)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (repo, sha, context) DO UPDATE
                SET state = excluded.state, status_id = excluded.status_id, target_url = excluded.target_url,
                    description = excluded.description, received_at = now()
                WHERE excluded.status_id >= commit_statuses.status_id
                """,
                [repo, sha, context, state, statusID, targetURL, description])
            return try await connection.query(
                """
                UPDATE tasks SET
                    head_ci_state = CASE WHEN head_sha = $2 THEN combined_ci_state(repo, $2) ELSE head_ci_state END,
                    merge_ci_state = CASE WHEN merge_sha = $2 THEN combined_ci_state(repo, $2) ELSE merge_ci_state END,
                    updated_at = now()
                WHERE repo = $1 AND (head_sha = $2 OR merge_sha = $2)
                RETURNING work_item, CASE WHEN merge_sha = $2 THEN 'merge' ELSE 'head' END AS commit,
                          combined_ci_state(repo, $2) AS combined
                """,
                [repo, sha]
            ).rows.map {
                CIUpdate(
                    workItem: try $0.decode("work_item"), commit: try $0.decode("commit"),
                    combinedState: try $0.decode("combined"))
            }
        }
    }

    /// The contexts whose latest status on `sha` (from Gitea's status webhooks) failed or errored,
    /// by context name.
    public func failedChecks(repo: String, sha: String) async throws -> [FailedCheck] {
        try await pool.query(
            """
            SELECT context, state, description, target_url FROM commit_statuses
            WHERE repo = $1 AND sha = $2 AND state IN ('failure', 'error') ORDER BY context
            """,
            [repo, sha]
        ).rows.map {
            FailedCheck(
                context: try $0.decode("context"), state: try $0.decode("state"),
                description: try $0.decode("description"), targetURL: try $0.decode("target_url"))
        }
    }
}
