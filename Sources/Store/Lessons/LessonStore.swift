import Foundation

/// A lessons-journal entry.
public struct Lesson: Sendable {
    public static let statuses = ["open", "accepted", "rejected", "fixed", "duplicate"]

    public var id: Int64 = 0
    /// Free text, as in the seed service (docs/lessons.md lists the types the detectors record).
    public var type: String
    public var source: String = "manual"
    public var status: String = "open"
    public var workItem: String?
    /// The task, when the work item is one (or the reporter named it).
    public var taskID: Int64?
    public var stage: String?
    public var agent: String?
    public var repo: String?
    public var rootCause: String
    public var suggestion: String?
    public var attribution: String?
    public var targetRepo: String?
    public var targetDomain: String?
    public var relatedTask: String?
    /// The agent run the lesson is about, when there is one (its log path is in `detail`).
    public var agentRunID: Int64?
    public var detail: JSONB = JSONB(text: "{}")
    public var createdAt: Date = Date()
    public var updatedAt: Date = Date()

    public init(type: String, rootCause: String) {
        self.type = type
        self.rootCause = rootCause
    }

    static let columns = """
        id, type, source, status, work_item, task_id, stage, agent, repo, root_cause, suggestion, attribution, \
        target_repo, target_domain, related_task, agent_run_id, detail, created_at, updated_at
        """

    init(row: Row) throws {
        id = try row.decode("id")
        type = try row.decode("type")
        source = try row.decode("source")
        status = try row.decode("status")
        workItem = try row.decode("work_item")
        taskID = try row.decode("task_id")
        stage = try row.decode("stage")
        agent = try row.decode("agent")
        repo = try row.decode("repo")
        rootCause = try row.decode("root_cause")
        suggestion = try row.decode("suggestion")
        attribution = try row.decode("attribution")
        targetRepo = try row.decode("target_repo")
        targetDomain = try row.decode("target_domain")
        relatedTask = try row.decode("related_task")
        agentRunID = try row.decode("agent_run_id")
        detail = try row.decode("detail")
        createdAt = try row.decode("created_at")
        updatedAt = try row.decode("updated_at")
    }
}

/// The `lessons` table.
public struct LessonStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// Records a lesson (linked to its task when the work item is known); returns it as stored.
    /// Its free text (root cause, suggestion, detail) is redacted of configured secrets and the
    /// root cause and suggestion capped (`SecretRedactor`): a gate failure's root cause carries
    /// output of commands the agent's code controls.
    public func record(_ lesson: Lesson) async throws -> Lesson {
        try await pool.withConnection { try await Self.record(lesson, on: $0) }
    }

    /// Records a lesson on the caller's connection (inside its transaction, if any), redacted and
    /// capped as `record(_:)` says.
    static func record(_ lesson: Lesson, on connection: Connection) async throws -> Lesson {
        var lesson = lesson
        let redactor = SecretRedactor.shared
        lesson.rootCause = redactor.redact(lesson.rootCause, limit: SecretRedactor.maxTextLength)
        lesson.suggestion = lesson.suggestion.map { redactor.redact($0, limit: SecretRedactor.maxTextLength) }
        lesson.detail = JSONB(text: redactor.redact(lesson.detail.text))
        return try Lesson(
            row: try await connection.query(
                """
                INSERT INTO lessons (type, source, status, work_item, task_id, stage, agent, repo, root_cause, suggestion,
                                     attribution, target_repo, target_domain, related_task, detail, agent_run_id)
                VALUES ($1, $2, $3, $4,
                        coalesce((SELECT id FROM tasks WHERE id = $15), (SELECT id FROM tasks WHERE work_item = $4)),
                        $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $16)
                RETURNING \(Lesson.columns)
                """,
                [
                    lesson.type, lesson.source, lesson.status, lesson.workItem, lesson.stage, lesson.agent, lesson.repo,
                    lesson.rootCause,
                    lesson.suggestion, lesson.attribution, lesson.targetRepo, lesson.targetDomain, lesson.relatedTask,
                    lesson.detail, lesson.taskID, lesson.agentRunID,
                ]
            ).first!)
    }

    /// Lesson counts by status and by type, and the last one's time (the `/queue` `lessons` block).
    public func summary() async throws -> LessonSummary {
        var byStatus: [String: Int] = [:]
        var byType: [String: Int] = [:]
        var lastAt: Date?
        for row in try await pool.query(
            "SELECT status, type, count(*) AS n, max(created_at) AS last FROM lessons GROUP BY status, type"
        ).rows {
            let n: Int = try row.decode("n")
            byStatus[try row.decode("status"), default: 0] += n
            byType[try row.decode("type"), default: 0] += n
            let last: Date = try row.decode("last")
            lastAt = max(lastAt ?? last, last)
        }
        return LessonSummary(byStatus: byStatus, byType: byType, lastAt: lastAt)
    }

    /// Lessons matching every given filter, newest first.
    public func list(
        type: String?, status: String?, repo: String?, workItem: String?, limit: Int
    ) async throws -> [Lesson] {
        try await pool.query(
            """
            SELECT \(Lesson.columns) FROM lessons
            WHERE ($1::text IS NULL OR type = $1) AND ($2::text IS NULL OR status = $2)
              AND ($3::text IS NULL OR repo = $3) AND ($4::text IS NULL OR work_item = $4)
            ORDER BY created_at DESC, id DESC LIMIT $5
            """,
            [type, status, repo, workItem, limit]
        ).rows.map(Lesson.init(row:))
    }

    /// Changes a lesson (`POST /lessons/{id}`): each non-nil field of `changes` replaces the stored
    /// one, `detail` is merged into the stored object. Returns nil for an unknown id.
    public func update(id: Int64, _ changes: LessonChanges) async throws -> Lesson? {
        let redactor = SecretRedactor.shared
        return try await pool.query(
            """
            UPDATE lessons SET status = coalesce($2, status), type = coalesce($3, type),
                attribution = coalesce($4, attribution), suggestion = coalesce($5, suggestion),
                target_repo = coalesce($6, target_repo), target_domain = coalesce($7, target_domain),
                root_cause = coalesce($8, root_cause), related_task = coalesce($9, related_task),
                stage = coalesce($10, stage), agent = coalesce($11, agent), repo = coalesce($12, repo),
                work_item = coalesce($13, work_item),
                task_id = coalesce((SELECT id FROM tasks WHERE id = $14), (SELECT id FROM tasks WHERE work_item = $13), task_id),
                detail = detail || coalesce($15::jsonb, '{}'::jsonb), updated_at = now()
            WHERE id = $1
            RETURNING \(Lesson.columns)
            """,
            [
                id, changes.status, changes.type, changes.attribution,
                changes.suggestion.map { redactor.redact($0, limit: SecretRedactor.maxTextLength) }, changes.targetRepo,
                changes.targetDomain,
                changes.rootCause.map { redactor.redact($0, limit: SecretRedactor.maxTextLength) },
                changes.relatedTask, changes.stage, changes.agent, changes.repo, changes.workItem, changes.taskID,
                changes.detail.map { JSONB(text: redactor.redact($0.text)) },
            ]
        ).first.map(Lesson.init(row:))
    }
}

extension Lesson: Encodable {
    /// Every column but `detail` (a detector's raw evidence, for the database reader).
    enum CodingKeys: String, CodingKey {
        case id, type, source, status, workItem, taskID, stage, agent, repo, rootCause, suggestion, attribution,
            targetRepo, targetDomain
        case relatedTask, agentRunID, createdAt, updatedAt
    }
}
