import Foundation

/// What agents have spent, for the budget check before each run and the `/queue` `budget` block.
/// Days are UTC days.
extension TaskStore {
    /// The start of today (UTC), as SQL.
    static let todaySQL = "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"

    /// Spent so far by the task, by its repository today and by all work today.
    public func budgetSpend(workItem: String, repo: String) async throws -> BudgetSpend {
        let row = try await pool.query(
            """
            SELECT coalesce(sum(r.cost_usd) FILTER (WHERE r.work_item = $1), 0)::float8 AS task,
                   coalesce(sum(r.cost_usd) FILTER (WHERE r.started_at >= \(Self.todaySQL) AND t.repo = $2), 0)::float8 AS repo_today,
                   coalesce(sum(r.cost_usd) FILTER (WHERE r.started_at >= \(Self.todaySQL)), 0)::float8 AS today
            FROM agent_runs r LEFT JOIN tasks t ON t.id = r.task_id
            WHERE r.work_item = $1 OR r.started_at >= \(Self.todaySQL)
            """,
            [workItem, repo]
        ).first!
        return BudgetSpend(
            task: try row.decode("task"), repoToday: try row.decode("repo_today"), today: try row.decode("today"))
    }

    /// Today's spend per repository (UTC day), for `/queue`.
    public func spendToday() async throws -> [(repo: String, usd: Double)] {
        try await pool.query(
            """
            SELECT coalesce(t.repo, '') AS repo, coalesce(sum(r.cost_usd), 0)::float8 AS usd
            FROM agent_runs r LEFT JOIN tasks t ON t.id = r.task_id
            WHERE r.started_at >= \(Self.todaySQL) GROUP BY 1 ORDER BY 1
            """
        ).rows.map { (try $0.decode("repo"), try $0.decode("usd")) }
    }

    /// Tasks waiting for approval because a budget ran out (their last event), with the reason.
    public func pausedForBudget() async throws -> [(workItem: String, reason: String?)] {
        try await pool.query(
            """
            SELECT t.work_item, e.reason FROM tasks t
            JOIN LATERAL (SELECT event, reason FROM task_events WHERE task_id = t.id ORDER BY id DESC LIMIT 1) e ON true
            WHERE t.status = 'awaiting_approval' AND e.event = 'budget_exceeded' ORDER BY t.work_item
            """
        ).rows.map { (try $0.decode("work_item"), try $0.decode("reason")) }
    }

    /// Records that the 80 % warning of `scope` about `subject` was sent; false when it already was.
    public func claimBudgetWarning(scope: String, subject: String) async throws -> Bool {
        try await pool.query(
            "INSERT INTO budget_warnings (scope, subject) VALUES ($1, $2) ON CONFLICT DO NOTHING", [scope, subject]
        ).affectedRows == 1
    }

    /// Today's UTC day by the database's clock, e.g. `2026-12-06`.
    public func utcDay() async throws -> String {
        try await pool.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day").first!.decode("day")
    }
}
