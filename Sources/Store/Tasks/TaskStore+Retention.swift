import Foundation

/// What the reaper's `worktree-prune` may remove: only a task that ended, and long enough ago.
extension TaskStore {
    /// Of `workItems`, those whose task ended (done, failed or cancelled) and has not changed for
    /// `retention`, by the database clock. A task of another status, or one not in the table, is
    /// never in the answer: its worktree may be in use. `updated_at` moves with every change, so a
    /// task retried after it failed starts its retention afresh when it ends again.
    public func ended(among workItems: [String], before retention: Duration) async throws -> Set<String> {
        guard !workItems.isEmpty else { return [] }
        let rows = try await pool.query(
            """
            SELECT work_item FROM tasks
            WHERE work_item = ANY($1::text[]) AND status IN ('done', 'failed', 'cancelled')
              AND updated_at <= now() - make_interval(secs => $2::float8)
            """,
            [PostgresArray(workItems), retention])
        return Set(try rows.rows.map { try $0.decode("work_item", as: String.self) })
    }
}
