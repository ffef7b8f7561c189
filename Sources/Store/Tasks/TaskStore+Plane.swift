import Foundation

/// A Plane work-item delivery `TaskStore.upsert` refused; nothing changed.
public struct WorkItemUpdateRefused: Error, CustomStringConvertible, Equatable {
    /// Why, for the delivery's recorded reason.
    public let description: String
}

extension TaskStore {
    /// Refuses, under the task's row lock, an update older than (or as old as) the work item's
    /// `updated_at` the task holds, and a delivery that would give a Plane issue a second task or a
    /// task a second Plane issue (the unique index would fail it, and its job retry for ever).
    static func checkWorkItemUpdate(
        workItem: String, planeIssueID: String?, planeUpdatedAt: Date?, on connection: Connection
    ) async throws {
        if let planeIssueID,
            let other = try await connection.query(
                "SELECT work_item FROM tasks WHERE plane_issue_id = $1 AND work_item <> $2", [planeIssueID, workItem]
            ).first
        {
            let owner: String = try other.decode("work_item")
            throw WorkItemUpdateRefused(
                description:
                    "Plane issue \(planeIssueID) already belongs to task \(owner), not \(workItem) (was the project's identifier changed?)"
            )
        }
        // Compared by PostgreSQL: both stamps keep their microseconds exactly there.
        guard
            let row = try await connection.query(
                """
                SELECT plane_issue_id, plane_updated_at,
                       ($2::timestamptz IS NULL OR plane_updated_at IS NULL OR $2::timestamptz > plane_updated_at) AS newer
                FROM tasks WHERE work_item = $1 FOR UPDATE
                """,
                [workItem, planeUpdatedAt]
            ).first
        else { return }
        if let planeIssueID, let own: String = try row.decode("plane_issue_id"), own != planeIssueID {
            throw WorkItemUpdateRefused(
                description: "task \(workItem) belongs to Plane issue \(own), not \(planeIssueID)")
        }
        if try !row.decode("newer", as: Bool.self), let planeUpdatedAt,
            let held: Date = try row.decode("plane_updated_at")
        {
            throw WorkItemUpdateRefused(
                description:
                    "stale: work item updated_at \(planeUpdatedAt.timestampText) is not newer than \(held.timestampText)"
            )
        }
    }

    /// A Plane issue's task with its history (oldest first), read while the task row is
    /// share-locked so the two agree: what a comment answers is judged from them.
    public func taskWithHistory(planeIssueID: String) async throws -> (task: TaskRecord, history: [TaskHistoryEntry])? {
        try await pool.withTransaction { connection in
            guard
                let row = try await connection.query(
                    "SELECT \(TaskRecord.columns) FROM tasks WHERE plane_issue_id = $1 FOR SHARE", [planeIssueID]
                ).first
            else { return nil }
            let task = try TaskRecord(row: row)
            return (task, try await Self.history(workItem: task.workItem, on: connection))
        }
    }
}
