import Foundation

/// The `repository_gates` table: per repository the serial gate's limit (mirrored from
/// `ORCH_CONFIG`) and the freeze. Whether a task may pass the gate is decided by
/// ``SerialGate`` (pure); this type only stores and reads.
public struct RepositoryGateStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// A repository's gate row.
    public struct Gate: Sendable, Equatable {
        public let repo: String
        /// Nil: no limit (the serial gate switched off).
        public let maxActiveTasks: Int?
        public let frozen: Bool
        public let frozenReason: String?
        /// The task whose merge or deploy froze it.
        public let frozenWorkItem: String?
        public let frozenSince: Date?
    }

    static let columns = "repo, max_active_tasks, frozen, frozen_reason, frozen_work_item, frozen_since"

    static func gate(_ row: Row) throws -> Gate {
        Gate(
            repo: try row.decode("repo"), maxActiveTasks: try row.decode("max_active_tasks"),
            frozen: try row.decode("frozen"), frozenReason: try row.decode("frozen_reason"),
            frozenWorkItem: try row.decode("frozen_work_item"), frozenSince: try row.decode("frozen_since"))
    }

    /// Writes the configured limits (every replica at startup: they share one configuration).
    /// Nil: no limit. Freezes are left as they are.
    public func configure(_ limits: [String: Int?]) async throws {
        guard !limits.isEmpty else { return }
        let repos = limits.keys.sorted()
        try await pool.query(
            """
            INSERT INTO repository_gates (repo, max_active_tasks)
            SELECT * FROM unnest($1::text[], $2::int[])
            ON CONFLICT (repo) DO UPDATE SET max_active_tasks = EXCLUDED.max_active_tasks, updated_at = now()
            WHERE repository_gates.max_active_tasks IS DISTINCT FROM EXCLUDED.max_active_tasks
            """,
            [PostgresArray(repos), PostgresArray(repos.map { limits[$0] ?? nil })])
    }

    /// Freezes the repository with the reason, in the caller's transaction (the outcome that
    /// found the red merge commit or the degraded deploy). A repository already frozen keeps its
    /// first reason. Returns whether this froze it.
    @discardableResult
    public static func freeze(
        repo: String, reason: String, workItem: String?, on connection: Connection
    ) async throws -> Bool {
        try await connection.query(
            """
            INSERT INTO repository_gates (repo, frozen, frozen_reason, frozen_work_item, frozen_since)
            VALUES ($1, true, $2, $3, now())
            ON CONFLICT (repo) DO UPDATE SET frozen = true, frozen_reason = $2, frozen_work_item = $3,
                frozen_since = now(), updated_at = now()
            WHERE NOT repository_gates.frozen
            """,
            [repo, String(reason.prefix(2000)), workItem]
        ).affectedRows == 1
    }

    /// Clears a freeze in the caller's transaction; returns how many were cleared (0 when the
    /// repository was not frozen).
    static func unfreeze(repo: String, on connection: Connection) async throws -> Int {
        try await connection.query(
            """
            UPDATE repository_gates SET frozen = false, unfrozen_at = now(), updated_at = now()
            WHERE repo = $1 AND frozen
            """,
            [repo]
        ).affectedRows
    }

    /// One repository's gate; nil when nothing is configured or recorded for it.
    public func gate(repo: String) async throws -> Gate? {
        try await pool.query("SELECT \(Self.columns) FROM repository_gates WHERE repo = $1", [repo]).first.map(
            Self.gate)
    }

    /// Every repository's gate, by name.
    public func gates() async throws -> [Gate] {
        try await pool.query("SELECT \(Self.columns) FROM repository_gates ORDER BY repo").rows.map(Self.gate)
    }
}
