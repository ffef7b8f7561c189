import Foundation

/// Reviews and comments on a task's pull request (`task_feedback`): recorded from Gitea's
/// webhooks, applied by the task's merge stage.
extension TaskStore {
    /// What became of a review or comment.
    public enum FeedbackEffect: Sendable, Equatable {
        /// Kept for the task's merge stage (`pending`), or recorded as applied (an approval).
        case recorded(workItem: String, pending: Bool)
        case ignored(String)
    }

    /// Records a review or comment on pull request `number` of `repo` for the task whose pull
    /// request it is, once per delivery. Pending feedback wakes a merge waiting for CI, which then
    /// sends the task back to development; a task already past its merge ignores it.
    public func recordFeedback(
        repo: String, number: Int, kind: TaskFeedback.Kind, source: String, author: String?, body: String,
        deliveryID: Int64
    ) async throws -> FeedbackEffect {
        let effect: FeedbackEffect = try await pool.withTransaction { connection in
            guard
                let row = try await connection.query(
                    "SELECT id, work_item, stage, status FROM tasks WHERE repo = $1 AND pr_number = $2 FOR UPDATE",
                    [repo, number]
                ).first
            else { return .ignored("PR #\(number) of \(repo) is not a task's pull request") }
            let workItem: String = try row.decode("work_item")
            let status: TaskStatus = try row.decode("status")
            if [.done, .cancelled, .failed].contains(status) {
                return .ignored("\(workItem) is \(status.rawValue): feedback on PR #\(number) is not applied")
            }
            let pending = kind != .approved
            let inserted = try await connection.query(
                """
                INSERT INTO task_feedback (task_id, source, kind, author, body, pr_number, delivery_id, applied_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN NULL ELSE now() END)
                ON CONFLICT (delivery_id) DO NOTHING
                """,
                [
                    try row.decode("id", as: Int64.self), source, kind, author, body, number, deliveryID, pending,
                ])
            guard inserted.affectedRows == 1 else { return .ignored("delivery \(deliveryID) was already recorded") }
            return .recorded(workItem: workItem, pending: pending)
        }
        if case .recorded(let workItem, true) = effect { try await wakeMerge(workItem: workItem) }
        return effect
    }

    /// The task's feedback not yet applied from `sources`, oldest first: the pull request's
    /// (`gitea_review`, `gitea_comment`, for the merge stage) by default.
    public func pendingFeedback(
        workItem: String, sources: [String] = ["gitea_review", "gitea_comment"]
    ) async throws -> [TaskFeedback] {
        try await pool.query(
            """
            SELECT \(TaskFeedback.columns) FROM task_feedback
            WHERE task_id = (SELECT id FROM tasks WHERE work_item = $1) AND applied_at IS NULL
              AND source = ANY($2::text[])
            ORDER BY id
            """,
            [workItem, PostgresArray(sources)]
        ).rows.map(TaskFeedback.init(row:))
    }

    /// Keeps a `/agent <text>` written while `workItem`'s agent stage runs, once per delivery: the
    /// running stage's job runs the stage again with it when it ends. False when the delivery
    /// was already recorded.
    public func recordAgentFeedback(
        workItem: String, author: String?, text: String, deliveryID: Int64
    ) async throws
        -> Bool
    {
        try await pool.query(
            """
            INSERT INTO task_feedback (task_id, source, kind, author, body, delivery_id)
            SELECT id, 'plane_agent', 'comment', $2, $3, $4 FROM tasks WHERE work_item = $1
            ON CONFLICT (delivery_id) DO NOTHING
            """,
            [workItem, author, text, deliveryID]
        ).affectedRows == 1
    }

    /// Marks feedback applied, in the transaction of the transition that applied it.
    public static func markFeedbackApplied(_ ids: [Int64], on connection: Connection) async throws {
        try await connection.query(
            "UPDATE task_feedback SET applied_at = now() WHERE id = ANY($1::bigint[]) AND applied_at IS NULL",
            [PostgresArray(ids)])
    }
}
