import Foundation

/// The coverage gate's tables: each repository's baseline (`coverage_baselines`) and what each
/// task's development gate measured (`coverage_measurements`). Whether a measurement passes is
/// decided by `CoverageGate` (pure, in Workers); this type only stores and reads.
public struct CoverageStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Who set a baseline last.
    public enum Setter: String, Sendable, PostgresTextEnum {
        /// A merged task raised it to its measurement.
        case merge
        /// `POST /coverage/baseline`: any value, lower too.
        case `operator`
    }

    /// A repository's baseline: the percentage a ratchet compares against.
    public struct Baseline: Sendable, Equatable {
        public let repo: String
        public let baseline: Double
        /// The merge commit whose measurement set it; nil when an operator set it.
        public let commitSHA: String?
        /// The task whose merge set it; nil when an operator set it.
        public let workItem: String?
        public let setBy: Setter
        public let updatedAt: Date
    }

    /// One run of `coverage_command` in a development gate.
    public struct Measurement: Sendable, Equatable {
        public let workItem: String
        public let repo: String
        public let percent: Double
        /// The task branch head it measured.
        public let headSHA: String
        public let passed: Bool
        public let measuredAt: Date
    }

    static let columns = "repo, baseline, commit_sha, work_item, set_by, updated_at"

    static func baseline(_ row: Row) throws -> Baseline {
        Baseline(
            repo: try row.decode("repo"), baseline: try row.decode("baseline"), commitSHA: try row.decode("commit_sha"),
            workItem: try row.decode("work_item"), setBy: try row.decode("set_by"),
            updatedAt: try row.decode("updated_at"))
    }

    /// One repository's baseline; nil before any merge measured it or an operator set it.
    public func baseline(repo: String) async throws -> Baseline? {
        try await pool.query("SELECT \(Self.columns) FROM coverage_baselines WHERE repo = $1", [repo]).first.map(
            Self.baseline)
    }

    /// Every repository's baseline, by name.
    public func baselines() async throws -> [Baseline] {
        try await pool.query("SELECT \(Self.columns) FROM coverage_baselines ORDER BY repo").rows.map(Self.baseline)
    }

    /// Sets a repository's baseline to `value` whatever it was (an operator's decision: it may
    /// lower it, say after deleting dead code with its tests).
    public func setBaseline(repo: String, value: Double) async throws -> Baseline {
        let row = try await pool.query(
            """
            INSERT INTO coverage_baselines (repo, baseline, set_by) VALUES ($1, $2, 'operator')
            ON CONFLICT (repo) DO UPDATE SET baseline = $2, commit_sha = NULL, work_item = NULL,
                set_by = 'operator', updated_at = now()
            RETURNING \(Self.columns)
            """,
            [repo, value]
        ).first
        guard let row else { throw PostgresError(kind: .decoding, message: "no baseline returned for \(repo)") }
        return try Self.baseline(row)
    }

    /// Records what a development gate measured on the task's head, and whether it passed.
    public func record(workItem: String, repo: String, percent: Double, headSHA: String, passed: Bool) async throws {
        try await pool.query(
            """
            INSERT INTO coverage_measurements (work_item, repo, percent, head_sha, passed)
            VALUES ($1, $2, $3, $4, $5)
            """,
            [workItem, repo, percent, headSHA, passed])
    }

    /// A task's measurements, oldest first.
    public func measurements(workItem: String) async throws -> [Measurement] {
        try await pool.query(
            """
            SELECT work_item, repo, percent, head_sha, passed, measured_at FROM coverage_measurements
            WHERE work_item = $1 ORDER BY id
            """,
            [workItem]
        ).rows.map { row in
            Measurement(
                workItem: try row.decode("work_item"), repo: try row.decode("repo"), percent: try row.decode("percent"),
                headSHA: try row.decode("head_sha"), passed: try row.decode("passed"),
                measuredAt: try row.decode("measured_at"))
        }
    }

    /// Raises the baseline of the task's repository to the task's latest passing measurement, in
    /// the caller's transaction (the merge stage's outcome, so the baseline moves exactly when the
    /// merge is recorded), naming the merge commit. Never lowers it; a task with no measurement
    /// (no `coverage_command`, the gate off) changes nothing. Returns whether it rose.
    @discardableResult
    public static func raiseBaseline(workItem: String, mergeSHA: String, on connection: Connection) async throws -> Bool
    {
        try await connection.query(
            """
            INSERT INTO coverage_baselines (repo, baseline, commit_sha, work_item, set_by)
            SELECT repo, percent, $2, work_item, 'merge' FROM coverage_measurements
            WHERE work_item = $1 AND passed ORDER BY id DESC LIMIT 1
            ON CONFLICT (repo) DO UPDATE SET baseline = EXCLUDED.baseline, commit_sha = EXCLUDED.commit_sha,
                work_item = EXCLUDED.work_item, set_by = 'merge', updated_at = now()
            WHERE EXCLUDED.baseline > coverage_baselines.baseline
            """,
            [workItem, mergeSHA]
        ).affectedRows == 1
    }
}
