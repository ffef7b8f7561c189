import Foundation

/// The serial gate in the transition's transaction (the rule is ``SerialGate``'s): the
/// repository's gate row is locked before its slots are counted, so two replicas moving two tasks
/// of one repository at the same instant are counted one after the other and never exceed the limit.
extension TaskStore {
    /// Statuses that hold a slot (``SerialGate/occupies(_:)``), and the stages that never do.
    static var occupyingStatuses: [String] {
        TaskStatus.allCases.filter {
            SerialGate.occupies(TaskState(stage: .merge, status: $0, track: .full, auto: true))
        }.map(\.rawValue)
    }
    static var freeStages: [String] {
        (TaskTrack.allCases.compactMap { $0.stages.first } + [.done]).map(\.rawValue)
    }

    /// The gate's verdict for `repo`, under the lock of its gate row (held until the caller's
    /// transaction ends); `excluding` is the task asking, which does not count against itself.
    static func serialGateVerdict(
        repo: String, excluding taskID: Int64, on connection: Connection
    ) async throws -> SerialGate.Verdict {
        try await connection.query(
            "INSERT INTO repository_gates (repo) VALUES ($1) ON CONFLICT (repo) DO NOTHING", [repo])
        let gate = try await connection.query(
            "SELECT max_active_tasks, frozen, frozen_reason FROM repository_gates WHERE repo = $1 FOR UPDATE", [repo]
        ).first!
        let occupied: Int = try await connection.query(
            """
            SELECT count(*) AS n FROM tasks
            WHERE repo = $1 AND id <> $2 AND status = ANY($3::text[]) AND stage <> ALL($4::text[])
            """,
            [repo, taskID, PostgresArray(occupyingStatuses), PostgresArray(freeStages)]
        ).first!.decode("n")
        return SerialGate.verdict(
            limit: try gate.decode("max_active_tasks"), occupied: occupied, frozen: try gate.decode("frozen"),
            frozenReason: try gate.decode("frozen_reason"))
    }

    /// Opens the gate for as many waiting tasks of `repo` as there are free slots, longest
    /// waiting first, in the caller's transaction (the one that freed a slot, or the unfreeze).
    /// Returns the work items that started.
    @discardableResult
    func openSerialGate(repo: String, on connection: Connection) async throws -> [String] {
        var started: [String] = []
        while true {
            // Locked in the order everyone locks: a waiting task's row is taken only here and by
            // its own cancel, which never waits for the gate row; SKIP LOCKED leaves that one be.
            guard
                let next = try await connection.query(
                    """
                    SELECT work_item, id FROM tasks WHERE repo = $1 AND status = 'waiting'
                    ORDER BY updated_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
                    """,
                    [repo]
                ).first
            else { return started }
            let workItem: String = try next.decode("work_item")
            guard
                case .open = try await Self.serialGateVerdict(
                    repo: repo, excluding: try next.decode("id"), on: connection)
            else { return started }
            _ = try await apply(
                .gateOpened, workItem: workItem, actor: "serial-gate", reason: "a slot of \(repo) freed",
                about: nil, policy: .init(), fence: nil, alongside: nil, on: connection)
            started.append(workItem)
        }
    }

    /// Opens the gate of `repo` for the tasks its free slots allow (after the limits were
    /// configured at startup: a raised limit, or the gate switched off, lets waiting tasks go).
    @discardableResult
    public func openSerialGate(repo: String) async throws -> [String] {
        try await pool.withTransaction { try await openSerialGate(repo: repo, on: $0) }
    }

    /// Clears the repository's freeze and starts the tasks that were waiting for it. Returns how
    /// many freezes were cleared (0: it was not frozen — the call is idempotent) and what started.
    public func unfreeze(repo: String) async throws -> (cleared: Int, started: [String]) {
        try await pool.withTransaction { connection in
            let cleared = try await RepositoryGateStore.unfreeze(repo: repo, on: connection)
            return (cleared, try await openSerialGate(repo: repo, on: connection))
        }
    }

    /// Per repository, the tasks holding a slot and the ones waiting (oldest first), for `/queue`.
    public func serialGateTasks() async throws -> [String: (active: [String], waiting: [String])] {
        var byRepo: [String: (active: [String], waiting: [String])] = [:]
        for row in try await pool.query(
            """
            SELECT repo, work_item, status = 'waiting' AS waiting FROM tasks
            WHERE repo IS NOT NULL AND (status = 'waiting' OR (status = ANY($1::text[]) AND stage <> ALL($2::text[])))
            ORDER BY updated_at, id
            """,
            [PostgresArray(Self.occupyingStatuses), PostgresArray(Self.freeStages)]
        ).rows {
            let repo: String = try row.decode("repo")
            let workItem: String = try row.decode("work_item")
            if try row.decode("waiting", as: Bool.self) {
                byRepo[repo, default: ([], [])].waiting.append(workItem)
            } else {
                byRepo[repo, default: ([], [])].active.append(workItem)
            }
        }
        return byRepo
    }
}

extension TaskStore {
    /// Of the tasks not finished, how many run without approval and how many are on the bug track.
    public func openTaskLabelCounts() async throws -> (auto: Int, bug: Int) {
        let row = try await pool.query(
            """
            SELECT count(*) FILTER (WHERE auto) AS auto, count(*) FILTER (WHERE track = 'bug') AS bug
            FROM tasks WHERE status NOT IN ('done', 'failed', 'cancelled')
            """
        ).first!
        return (try row.decode("auto"), try row.decode("bug"))
    }
}
