import Foundation

/// Task dependencies: a task with a dependency that is not done waits `blocked` in its first
/// stage and starts in the transaction that finishes its last dependency. Edges come from the
/// work item's description (kept in step with it) and from the admin API; an edge that would
/// close a cycle is refused, recorded, and told on the task (its event becomes a Telegram message
/// and a comment on the work item like every other).
extension TaskStore {
    /// Where an edge came from.
    public enum DependencySource: String, Sendable {
        case description, api
    }

    /// An edge that was not stored because it would close a cycle.
    public struct DependencyRefusal: Sendable, Equatable, Encodable {
        public let dependsOn: String
        /// The cycle the edge would have closed, from the task back to itself.
        public let cycle: [String]
    }

    /// Adds edges through the admin API; returns the task after its dependency state was
    /// applied, and the edges refused. Nil when there is no such task.
    public func addDependencies(
        workItem: String, dependsOn: [String]
    ) async throws -> (task: TaskRecord, refused: [DependencyRefusal])? {
        try await pool.withTransaction { connection in
            guard
                try await connection.query("SELECT 1 FROM tasks WHERE work_item = $1 FOR UPDATE", [workItem]).first
                    != nil
            else { return nil }
            let refused = try await Self.storeDependencies(
                workItem: workItem, dependsOn: dependsOn, source: .api, replacing: false, on: connection)
            let task = try await applyDependencies(workItem: workItem, refused: refused, on: connection)
            return task.map { ($0, refused) }
        }
    }

    /// The edges of a task (what it waits for), with whether each is done.
    public func dependencies(workItem: String) async throws -> [DependencyEdge] {
        try await dependencyGraph(refusals: 0).edges.filter { $0.workItem == workItem }
    }

    /// Stores `dependsOn` as the task's edges of `source` (replacing that source's others when
    /// `replacing`), refusing each edge that would close a cycle. In the caller's transaction.
    static func storeDependencies(
        workItem: String, dependsOn: [String], source: DependencySource, replacing: Bool, on connection: Connection
    ) async throws -> [DependencyRefusal] {
        try await connection.query(
            "SELECT pg_advisory_xact_lock($1, 0)", [AdvisoryLockKey.Namespace.taskDependencies])
        if replacing {
            try await connection.query(
                "DELETE FROM task_dependencies WHERE work_item = $1 AND source = $2 AND depends_on <> ALL($3::text[])",
                [workItem, source.rawValue, PostgresArray(dependsOn)])
        }
        var refused: [DependencyRefusal] = []
        for dependency in dependsOn {
            if let cycle = try await cycle(adding: dependency, to: workItem, on: connection) {
                refused.append(DependencyRefusal(dependsOn: dependency, cycle: cycle))
                try await connection.query(
                    """
                    INSERT INTO task_dependency_refusals (work_item, depends_on, source, cycle)
                    VALUES ($1, $2, $3, $4::text[])
                    """,
                    [workItem, dependency, source.rawValue, PostgresArray(cycle)])
                continue
            }
            try await connection.query(
                """
                INSERT INTO task_dependencies (work_item, depends_on, source) VALUES ($1, $2, $3)
                ON CONFLICT (work_item, depends_on) DO NOTHING
                """,
                [workItem, dependency, source.rawValue])
        }
        return refused
    }

    /// The cycle `workItem → dependency` would close (`dependency` already reaches `workItem`),
    /// from `workItem` back to itself; nil when there is none.
    static func cycle(
        adding dependency: String, to workItem: String, on connection: Connection
    ) async throws
        -> [String]?
    {
        if dependency == workItem { return [workItem, workItem] }
        let path: [String]? = try await connection.query(
            """
            WITH RECURSIVE reach (node, path) AS (
                SELECT depends_on, ARRAY[work_item, depends_on] FROM task_dependencies WHERE work_item = $1
                UNION ALL
                SELECT d.depends_on, r.path || d.depends_on
                FROM task_dependencies d JOIN reach r ON d.work_item = r.node
                WHERE NOT d.depends_on = ANY(r.path)
            )
            SELECT path FROM reach WHERE node = $2 LIMIT 1
            """,
            [dependency, workItem]
        ).first?.decode("path", as: PostgresTextArray.self).values
        return path.map { [workItem] + $0 }
    }

    /// The task's dependencies that are not done (no task yet counts as not done).
    static func unfinishedDependencies(workItem: String, on connection: Connection) async throws -> [String] {
        try await connection.query(
            """
            SELECT d.depends_on FROM task_dependencies d LEFT JOIN tasks t ON t.work_item = d.depends_on
            WHERE d.work_item = $1 AND (t.status IS NULL OR t.status <> 'done') ORDER BY d.depends_on
            """,
            [workItem]
        ).rows.map { try $0.decode("depends_on") }
    }

    /// After the task's edges changed: blocks a task still in its first stage that now waits for
    /// something, unblocks a blocked one that no longer does, and records each refused edge on the
    /// task. Returns the task as it is now.
    func applyDependencies(
        workItem: String, refused: [DependencyRefusal], on connection: Connection
    ) async throws -> TaskRecord? {
        guard
            var task = try await connection.query(
                "SELECT \(TaskRecord.columns) FROM tasks WHERE work_item = $1 FOR UPDATE", [workItem]
            ).first.map(TaskRecord.init(row:))
        else { return nil }
        try await Self.recordRefusals(refused, of: task, on: connection)
        let waitingFor = try await Self.unfinishedDependencies(workItem: workItem, on: connection)
        let firstStage = task.state.stage == task.state.track.stages.first
        var event: TaskEvent?
        if !waitingFor.isEmpty, firstStage, task.state.status == .active {
            event = .blocked
        } else if waitingFor.isEmpty, task.state.status == .blocked {
            event = .unblocked
        }
        if let event {
            let reason =
                waitingFor.isEmpty
                ? "every dependency is done" : "waiting for \(waitingFor.joined(separator: ", "))"
            task =
                try await apply(
                    event, workItem: workItem, actor: "dependencies", reason: reason, about: nil, policy: .init(),
                    fence: nil, alongside: nil, on: connection) ?? task
        }
        return task
    }

    /// Records each refused edge on the task: a `dependency_refused` event, which reaches Telegram
    /// and the work item's comments like every event.
    static func recordRefusals(
        _ refused: [DependencyRefusal], of task: TaskRecord, on connection: Connection
    ) async throws {
        for refusal in refused {
            try await recordEvent(
                taskID: task.id, event: "dependency_refused", from: task.state, to: task.state,
                reason: "'\(task.workItem) depends on \(refusal.dependsOn)' refused: it would close the cycle "
                    + refusal.cycle.joined(separator: " → "),
                actor: "dependencies", on: connection)
        }
    }

    /// Starts the blocked tasks that waited for `workItem` (now done) and for nothing else, in the
    /// transaction that finished it.
    func releaseDependents(of workItem: String, on connection: Connection) async throws {
        let dependents: [String] = try await connection.query(
            """
            SELECT t.work_item FROM tasks t JOIN task_dependencies d ON d.work_item = t.work_item
            WHERE d.depends_on = $1 AND t.status = 'blocked' ORDER BY t.id
            """,
            [workItem]
        ).rows.map { try $0.decode("work_item") }
        for dependent in dependents {
            _ = try await applyDependencies(workItem: dependent, refused: [], on: connection)
        }
    }
}

extension TaskStore {
    /// One edge, for reports.
    public struct DependencyEdge: Sendable, Encodable {
        public let workItem: String
        public let dependsOn: String
        public let source: String
        public let done: Bool
    }

    /// A refused edge, for reports.
    public struct RefusedDependency: Sendable, Encodable {
        public let workItem: String
        public let dependsOn: String
        public let cycle: [String]
        public let at: Date
    }

    /// Every edge (what each task waits for, and whether it is done) and the latest refusals.
    public func dependencyGraph(
        refusals limit: Int = 20
    ) async throws -> (
        edges: [DependencyEdge], refused: [RefusedDependency]
    ) {
        let edges = try await pool.query(
            """
            SELECT d.work_item, d.depends_on, d.source, coalesce(t.status = 'done', false) AS done
            FROM task_dependencies d LEFT JOIN tasks t ON t.work_item = d.depends_on
            ORDER BY d.work_item, d.depends_on
            """
        ).rows.map {
            DependencyEdge(
                workItem: try $0.decode("work_item"), dependsOn: try $0.decode("depends_on"),
                source: try $0.decode("source"), done: try $0.decode("done"))
        }
        let refused = try await pool.query(
            "SELECT work_item, depends_on, cycle, at FROM task_dependency_refusals ORDER BY id DESC LIMIT $1", [limit]
        ).rows.map {
            RefusedDependency(
                workItem: try $0.decode("work_item"), dependsOn: try $0.decode("depends_on"),
                cycle: try $0.decode("cycle", as: PostgresTextArray.self).values, at: try $0.decode("at"))
        }
        return (edges, refused)
    }
}

extension TaskStore {
    /// The work items of blocked tasks.
    public func blockedWorkItems() async throws -> [String] {
        try await pool.query("SELECT work_item FROM tasks WHERE status = 'blocked' ORDER BY id").rows.map {
            try $0.decode("work_item")
        }
    }
}
