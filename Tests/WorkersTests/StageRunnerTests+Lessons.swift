import Foundation
import Store
import XCTest

@testable import Workers

/// The `stage_timeout` detector: what a run killed at its timeout leaves in the lessons journal.
extension StageRunnerTests {
    func testTimedOutRunRecordsOneStageTimeoutLessonPointingAtItsLog() async throws {
        agent.behaviour.withLock {
            $0 = { _ in .init(files: ["docs/tasks/ORCH-1/spec.md": "half"], exitCode: 137, timedOut: true) }
        }
        let runner = runner()
        try await step("analysis", runner)
        let lessons = LessonStore(pool: database.pool)
        var found = try await lessons.list(
            type: "stage_timeout", status: nil, repo: nil, workItem: workItem, limit: 10)
        XCTAssertEqual(found.count, 1)
        let lesson = try XCTUnwrap(found.first)
        XCTAssertEqual(lesson.source, "auto")
        XCTAssertEqual(lesson.stage, "analysis")
        XCTAssertEqual(lesson.agent, "default")
        XCTAssertEqual(lesson.repo, "acme/orch")
        XCTAssertTrue(lesson.rootCause.contains("timeout"), lesson.rootCause)
        let runID = try XCTUnwrap(lesson.agentRunID)
        let detail =
            try JSONSerialization.jsonObject(with: Data(lesson.detail.text.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual((detail["run_id"] as? Int).map(Int64.init), runID)
        let logPath = try XCTUnwrap(detail["log_path"] as? String)
        XCTAssertTrue(logPath.hasSuffix(".log"), logPath)
        XCTAssertEqual(detail["timeout_seconds"] as? String, "2700")
        // The try failed like any failed run: the stage runs again with the reason as feedback.
        let event = try await lastEvent()
        XCTAssertEqual(event.event, "stage_failed")
        XCTAssertTrue(event.reason?.contains("the agent timed out") == true, event.reason ?? "")

        // The retry times out the same way: within the window the finding is not recorded again.
        try await step("analysis", runner)
        found = try await lessons.list(type: "stage_timeout", status: nil, repo: nil, workItem: workItem, limit: 10)
        XCTAssertEqual(found.count, 1, "deduplicated within ORCH_LESSONS_DEDUP_WINDOW")
        let runs = try await database.pool.query(
            "SELECT count(*) AS n FROM agent_runs WHERE work_item = $1 AND timed_out", [workItem]
        ).first!.decode("n", as: Int.self)
        XCTAssertEqual(runs, 2)
    }

    func testFailedRunThatDidNotTimeOutRecordsNoTimeoutLesson() async throws {
        agent.behaviour.withLock { $0 = { _ in .init(exitCode: 1) } }
        try await step("analysis", runner())
        let found = try await LessonStore(pool: database.pool).list(
            type: "stage_timeout", status: nil, repo: nil, workItem: workItem, limit: 10)
        XCTAssertTrue(found.isEmpty)
    }
}
