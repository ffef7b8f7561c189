import Foundation
import Store
import TestSupport
import XCTest

final class TaskStoreTests: DatabaseTestCase {
    var tasks: TaskStore!

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
    }

    private func createTask(
        _ workItem: String = "ORCH-98", track: TaskTrack = .full, auto: Bool = false
    ) async throws -> TaskRecord {
        try await tasks.upsert(
            workItem: workItem, repo: "acme/orch", title: "Crash when saving a draft", description: "Steps…",
            labels: ["bug", "needs \"quotes\", commas", "auto"], track: track, auto: auto,
            planeIssueID: "issue-\(workItem)",
            planeProjectID: "9d8c7b6a", planeState: "Todo"
        ).task
    }

    func testUpsertCreatesOnceAndKeepsFactsCurrent() async throws {
        let first = try await tasks.upsert(
            workItem: "ORCH-98", repo: "acme/orch", title: "Old title", description: "", labels: ["bug"], track: .bug,
            auto: false,
            planeIssueID: "c0ffee00", planeProjectID: "9d8c7b6a", planeState: "Todo")
        XCTAssertTrue(first.created)
        XCTAssertEqual(first.task.state, TaskState.initial(track: .bug, auto: false))
        try await tasks.apply(.stagePassed, workItem: "ORCH-98", actor: "system")
        let second = try await tasks.upsert(
            workItem: "ORCH-98", repo: nil, title: "New title", description: "d", labels: ["bug", "auto"], track: .full,
            auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: "In Progress")
        XCTAssertFalse(second.created)
        XCTAssertEqual(second.task.title, "New title")
        XCTAssertEqual(second.task.repo, "acme/orch", "a missing repo does not erase the known one")
        XCTAssertEqual(second.task.labels, ["bug", "auto"])
        XCTAssertTrue(second.task.state.auto)
        XCTAssertEqual(second.task.state.stage, .development, "an update never moves the stage")
        XCTAssertEqual(second.task.state.track, .bug, "the track changes only by escalation")
    }

    func testTransitionsAreRecordedAndIllegalOnesChangeNothing() async throws {
        let created = try await createTask()
        XCTAssertEqual(created.labels, ["bug", "needs \"quotes\", commas", "auto"])
        let awaiting = try await tasks.apply(
            .stagePassed, workItem: "ORCH-98", actor: "system", reason: "spec.md written")
        XCTAssertEqual(awaiting?.state.status, .awaitingApproval)
        do {
            try await tasks.apply(.stagePassed, workItem: "ORCH-98", actor: "system")
            XCTFail("expected an illegal transition")
        } catch let error as IllegalTransition {
            XCTAssertEqual(error.reason, "needs status active")
        }
        try await tasks.apply(.approved, workItem: "ORCH-98", actor: "plane:alice")
        let history = try await tasks.history(workItem: "ORCH-98")
        XCTAssertEqual(history.map(\.event), ["stage_passed", "approved"])
        XCTAssertEqual(history[0].fromStage, "analysis")
        XCTAssertEqual(history[0].toStage, "architecture")
        XCTAssertEqual(history[0].reason, "spec.md written")
        XCTAssertEqual(history[1].actor, "plane:alice")
        let unknown = try await tasks.apply(.cancel, workItem: "ORCH-404", actor: "admin")
        XCTAssertNil(unknown)
    }

    func testConcurrentApprovalsApplyOnce() async throws {
        _ = try await createTask()
        try await tasks.apply(.stagePassed, workItem: "ORCH-98", actor: "system")
        let store = tasks!
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { (try? await store.apply(.approved, workItem: "ORCH-98", actor: "admin")) != nil }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        XCTAssertEqual(results.filter { $0 }.count, 1, "the row lock serialises them; the rest are illegal")
        let approvals = try await tasks.history(workItem: "ORCH-98").filter { $0.event == "approved" }.count
        XCTAssertEqual(approvals, 1)
    }

    func testCancelStopsStageJobsButLetsARunningMergeFinish() async throws {
        // ORCH-98's analysis job was enqueued with the task; ORCH-99 is in its merge stage.
        _ = try await createTask("ORCH-98", auto: true)
        _ = try await createTask("ORCH-99", auto: true)
        for _ in 0..<4 { try await tasks.apply(.stagePassed, workItem: "ORCH-99", actor: "system") }
        let stage = try await tasks.task(workItem: "ORCH-99")?.state.stage
        XCTAssertEqual(stage, .merge)
        let jobs = JobStore(pool: database.pool)
        try await database.pool.query(
            "UPDATE jobs SET status = 'cancelled' WHERE payload->>'work_item' = 'ORCH-99' AND payload->>'stage' <> 'merge'"
        )
        let claimed = try await jobs.claim(queues: ["default"], replicaID: "r1", limit: 10, lease: .seconds(60))
        XCTAssertEqual(
            Set(claimed.map { $0.payload.text.contains("merge") }), [false, true],
            "ORCH-98 analysis and ORCH-99 merge running")

        try await tasks.apply(.cancel, workItem: "ORCH-98", actor: "admin", reason: "STOP label")
        try await tasks.apply(.cancel, workItem: "ORCH-99", actor: "admin", reason: "STOP label")
        let flags = try await database.pool.query(
            "SELECT payload->>'stage' AS stage, cancel_requested FROM jobs WHERE status = 'running' ORDER BY id"
        ).rows
        let byStage = Dictionary(
            uniqueKeysWithValues: try flags.map {
                (try $0.decode("stage", as: String.self), try $0.decode("cancel_requested", as: Bool.self))
            })
        XCTAssertEqual(
            byStage, ["analysis": true, "merge": false], "the analysis is stopped, the merge left to finish")
        let summary = try await tasks.stopSummary(recent: 5)
        XCTAssertEqual(summary.tasks, 2)
        XCTAssertEqual(summary.deferred, 1)
        XCTAssertEqual(summary.recent.map(\.workItem), ["ORCH-99", "ORCH-98"])
    }

    /// A cancel stops the task's stage work, not the notifications about what already happened
    /// (one may be queued behind Telegram's 429, or being sent right now).
    func testCancelLeavesTheTasksNotificationJobsAlone() async throws {
        _ = try await createTask("ORCH-98", auto: true)
        let jobs = JobStore(pool: database.pool)
        let queued = try await jobs.enqueue(
            NewJob(
                kind: "notify.telegram",
                payload: try JSONB(encoding: ["work_item": "ORCH-98", "text": "analysis passed"]), maxAttempts: 5))!
        let sending = try await jobs.enqueue(
            NewJob(
                kind: "notify.plane_comment", payload: try JSONB(encoding: ["work_item": "ORCH-98"]),
                runAt: Date().addingTimeInterval(-1), maxAttempts: 5))!
        try await database.pool.query(
            "UPDATE jobs SET status = 'running', locked_by = 'r1', attempt = 1, claimed_at = now(), lease_expires_at = now() + interval '1 minute' WHERE id = $1",
            [sending])

        try await tasks.apply(.cancel, workItem: "ORCH-98", actor: "admin", reason: "STOP label")
        let queuedStatus = try await jobs.job(id: queued)?.status
        XCTAssertEqual(queuedStatus, .queued)
        let flagged = try await database.pool.query("SELECT cancel_requested FROM jobs WHERE id = $1", [sending]).rows
            .first?.decode("cancel_requested", as: Bool.self)
        XCTAssertEqual(flagged, false)
        let stageJobs = try await database.pool.query(
            "SELECT status FROM jobs WHERE kind = 'run_stage' AND payload->>'work_item' = 'ORCH-98'"
        ).rows
            .map { try $0.decode("status", as: String.self) }
        XCTAssertEqual(stageJobs, ["cancelled"], "the stage job is cancelled")
    }
}
