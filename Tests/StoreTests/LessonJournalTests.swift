import Foundation
import Store
import TestSupport
import XCTest

/// The lessons journal in the database: the deduplication window of automatic lessons, the
/// `cancelled_mid_stage` detector, the kill switch, and what analysts get from psql (every table
/// and column commented, the documented queries of docs/lessons.md running as written).
final class LessonJournalTests: DatabaseTestCase {
    var tasks: TaskStore!
    let replica = "replica-lessons"

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        try await ReplicaStore(pool: database.pool).register(
            id: replica, name: replica, host: "test", pid: 1, role: "worker")
    }

    @discardableResult
    private func newTask(_ workItem: String) async throws -> TaskRecord {
        try await tasks.upsert(
            workItem: workItem, repo: "acme/orch", title: "t", description: "", labels: [], track: .full, auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: nil
        ).task
    }

    private func record(
        _ found: AutoLesson, _ task: TaskRecord, _ settings: LessonJournal.Settings
    ) async throws -> Lesson? {
        try await database.pool.withConnection {
            try await LessonStore.recordAuto(found, task: task, on: $0, settings: settings)
        }
    }

    private func count(_ type: String) async throws -> Int {
        try await database.pool.query("SELECT count(*) AS n FROM lessons WHERE type = $1", [type]).first!.decode(
            "n", as: Int.self)
    }

    func testSameFindingWithinTheWindowIsRecordedOnce() async throws {
        let task = try await newTask("ORCH-1")
        let hour = LessonJournal.Settings(enabled: true, dedupWindow: .seconds(3600))
        let found = AutoLesson(type: "stage_timeout", rootCause: "killed at 60s", evidence: ["job_id": "1"])
        let first = try await record(found, task, hour)
        XCTAssertEqual(first?.source, "auto")
        XCTAssertEqual(first?.stage, "analysis")
        XCTAssertEqual(first?.repo, "acme/orch")
        XCTAssertEqual(first?.taskID, task.id)
        var again = found
        again.evidence = ["job_id": "2"]
        let second = try await record(again, task, hour)
        XCTAssertNil(second, "same type, work item, stage and root cause within the window")
        var other = found
        other.rootCause = "killed at 120s"
        let third = try await record(other, task, hour)
        XCTAssertNotNil(third, "another root cause is another finding")
        let otherTask = try await newTask("ORCH-2")
        let fourth = try await record(found, otherTask, hour)
        XCTAssertNotNil(fourth, "another work item is another finding")
        let afterFour = try await count("stage_timeout")
        XCTAssertEqual(afterFour, 3)

        // Once the window has passed, the finding is recorded again.
        let short = LessonJournal.Settings(enabled: true, dedupWindow: .milliseconds(50))
        try await Task.sleep(for: .milliseconds(120))
        let later = try await record(found, task, short)
        XCTAssertNotNil(later)
        // Switched off, nothing is recorded.
        let off = try await record(
            AutoLesson(type: "stage_timeout", rootCause: "new"), task, .init(enabled: false, dedupWindow: .seconds(1)))
        XCTAssertNil(off)
        let total = try await count("stage_timeout")
        XCTAssertEqual(total, 4)
    }

    func testCancelWhileAStageJobRunsRecordsALessonNamingTheRun() async throws {
        try await newTask("ORCH-1")
        let job = try await JobStore(pool: database.pool).claim(
            queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(60)
        ).first
        let jobID = try XCTUnwrap(job?.id)
        let runID = try await AgentRunStore(pool: database.pool).begin(
            .init(
                workItem: "ORCH-1", jobID: jobID, stage: "analysis", role: "default", replicaID: replica,
                host: "test", command: ["agent"], logPath: "/logs/ORCH-1-analysis.log"))
        try await tasks.apply(.cancel, workItem: "ORCH-1", actor: "admin", reason: "not needed any more")

        let lessons = try await LessonStore(pool: database.pool).list(
            type: "cancelled_mid_stage", status: nil, repo: "acme/orch", workItem: "ORCH-1", limit: 10)
        XCTAssertEqual(lessons.count, 1)
        let lesson = try XCTUnwrap(lessons.first)
        XCTAssertEqual(lesson.source, "auto")
        XCTAssertEqual(lesson.stage, "analysis")
        XCTAssertEqual(lesson.agent, "default")
        XCTAssertEqual(lesson.agentRunID, runID)
        let detail = try JSONSerialization.jsonObject(with: Data(lesson.detail.text.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(detail["log_path"] as? String, "/logs/ORCH-1-analysis.log")
        XCTAssertEqual(detail["job_ids"] as? String, String(jobID))
        XCTAssertEqual(detail["cancelled_by"] as? String, "admin")
        XCTAssertEqual(detail["reason"] as? String, "not needed any more")

        // A task cancelled while its next job only waits in the queue loses no work: no lesson.
        try await newTask("ORCH-2")
        try await tasks.apply(.cancel, workItem: "ORCH-2", actor: "admin", reason: "not needed")
        let recorded = try await count("cancelled_mid_stage")
        XCTAssertEqual(recorded, 1)
    }

    func testEveryTableAndColumnIsCommented() async throws {
        let missing = try await database.pool.query(
            """
            SELECT c.relname || coalesce('.' || a.attname, '') AS name
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
            WHERE c.relkind IN ('r', 'v')
              AND CASE WHEN a.attname IS NULL THEN obj_description(c.oid, 'pg_class') IS NULL
                       ELSE col_description(c.oid, a.attnum) IS NULL END
            ORDER BY 1
            """
        ).rows.map { try $0.decode("name", as: String.self) }
        XCTAssertEqual(missing, [], "tables, views and columns without COMMENT ON")
    }

    func testDocumentedQueriesRun() async throws {
        let text = try String(
            contentsOf: packageRoot.appendingPathComponent("docs/lessons.md"), encoding: .utf8)
        let blocks = text.components(separatedBy: "```sql\n").dropFirst().map {
            $0.components(separatedBy: "```").first ?? ""
        }
        XCTAssertGreaterThanOrEqual(blocks.count, 5, "docs/lessons.md has its example queries")
        // Something to find: a task cancelled mid-stage, a timeout lesson, a failed run with a cost.
        let task = try await newTask("ORCH-1")
        _ = try await record(
            AutoLesson(type: "stage_timeout", rootCause: "killed"), task, .init(enabled: true, dedupWindow: .zero))
        _ = try await record(
            AutoLesson(type: "stage_timeout", rootCause: "killed"), task, .init(enabled: true, dedupWindow: .zero))
        for block in blocks {
            for statement in block.components(separatedBy: ";\n")
            where !statement.split(separator: "\n").allSatisfy({ $0.hasPrefix("--") || $0.isEmpty }) {
                do {
                    _ = try await database.pool.query(statement)
                } catch {
                    XCTFail("docs/lessons.md query failed: \(error)\n\(statement)")
                }
            }
        }
    }

    func testAnalystRoleCanReadTheViews() async throws {
        let mayCreateRoles = try await database.pool.query(
            "SELECT rolcreaterole OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user"
        ).first!.decode("ok", as: Bool.self)
        try XCTSkipUnless(mayCreateRoles, "the test server's user may not create roles: the migration skipped it")
        let granted = try await database.pool.query(
            "SELECT has_table_privilege('orchestrator_analyst', 'lessons_per_week', 'SELECT') AS ok"
        ).first!.decode("ok", as: Bool.self)
        XCTAssertTrue(granted)
        let writes = try await database.pool.query(
            "SELECT has_table_privilege('orchestrator_analyst', 'lessons', 'INSERT') AS ok"
        ).first!.decode("ok", as: Bool.self)
        XCTAssertFalse(writes, "read-only")
    }
}
