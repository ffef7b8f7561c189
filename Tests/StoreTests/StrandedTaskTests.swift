import Foundation
import Store
import TestSupport
import XCTest

/// A task is never left `active` without a live stage job: a stage job that fails for good holds
/// (or fails) its task in the transaction that fails the job, and the leader's sweep catches the
/// paths that never reach a handler (a job rescued into `failed`, cancelled by an operator).
final class StrandedTaskTests: DatabaseTestCase {
    var tasks: TaskStore!
    var jobs: JobStore!

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        jobs = JobStore(pool: database.pool)
        for id in ["replica-a", "replica-b"] {
            try await ReplicaStore(pool: database.pool).register(id: id, name: id, host: "test", pid: 1, role: "worker")
        }
        _ = try await tasks.upsert(
            workItem: "ORCH-7", repo: "acme/orch", title: "t", description: "", labels: ["auto"], track: .full,
            auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: nil)
    }

    private func claim(_ replica: String = "replica-a") async throws -> Job {
        let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(30))
        return try XCTUnwrap(claimed.first)
    }

    /// Fails `job` for good the way the worker does, with the stage runner's hook.
    private func failForGood(_ job: Job, error: String, canRetry: Bool) async throws -> JobStore.FailOutcome {
        let payload = try job.payload.decode(StageJobPayload.self)
        let tasks = self.tasks!
        return try await jobs.fail(
            try XCTUnwrap(job.lease), error: error, retryDelay: .zero, retryable: canRetry, finalAttempt: true,
            whenFinal: { connection in
                try await tasks.stageJobFailed(payload, error: error, canRetry: canRetry, on: connection)
            })
    }

    private func liveStageJobs() async throws -> Int {
        try await database.pool.query(
            "SELECT count(*) AS n FROM jobs WHERE kind = 'run_stage' AND status IN ('queued', 'running')"
        ).first!.decode("n")
    }

    func testAStageJobOutOfRetriesHoldsItsTaskWithTheReasonALessonAndAnEventAndRetryRestartsIt() async throws {
        let job = try await claim()
        let outcome = try await failForGood(
            job, error: "Gitea answered 502 while opening the pull request", canRetry: true)
        XCTAssertEqual(outcome, .failed)
        let task = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.status, .held)
        XCTAssertEqual(task?.state.stage, .analysis)
        let last = try await tasks.history(workItem: "ORCH-7").last
        XCTAssertEqual(last?.event, "stage_error")
        XCTAssertEqual(last?.toStatus, "held")
        XCTAssertEqual(
            last?.reason,
            "the analysis job gave up after its retries: Gitea answered 502 while opening the pull request")
        let lessons = try await LessonStore(pool: database.pool).list(
            type: "transient_exhaustion", status: nil, repo: nil, workItem: "ORCH-7", limit: 5)
        XCTAssertEqual(lessons.count, 1)

        // /retry starts the stage again with a new visit and job.
        let retried = try await tasks.apply(.retry, workItem: "ORCH-7", actor: "operator")
        XCTAssertEqual(retried?.state.status, .active)
        XCTAssertEqual(retried?.visit, 2)
        let live = try await liveStageJobs()
        XCTAssertEqual(live, 1)
    }

    func testAPermanentErrorFailsTheTask() async throws {
        let job = try await claim()
        let outcome = try await failForGood(
            job, error: "repository acme/orch of ORCH-7 is not configured", canRetry: false)
        XCTAssertEqual(outcome, .failed)
        let task = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.status, .failed)
        let last = try await tasks.history(workItem: "ORCH-7").last
        XCTAssertEqual(last?.reason, "the analysis job failed: repository acme/orch of ORCH-7 is not configured")
    }

    /// The job was handed to another replica before this one recorded its failure: nothing of the
    /// failure applies (the hold is rolled back with the refused job update).
    func testAFailureWhoseFenceBrokeHoldsNothing() async throws {
        let stale = try await claim()
        try await database.pool.query(
            "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [stale.id])
        _ = try await jobs.rescueAbandoned(staleAfter: .seconds(60))
        _ = try await claim("replica-b")
        let outcome = try await failForGood(stale, error: "late failure", canRetry: true)
        XCTAssertEqual(outcome, .notOwner)
        let task = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.status, .active)
        let events = try await tasks.history(workItem: "ORCH-7")
        XCTAssertTrue(events.isEmpty, "\(events.map(\.event))")
    }

    /// A failure about a visit the task has left (it was cancelled and retried meanwhile) is ignored.
    func testAFailureAboutAnEarlierVisitLeavesTheTaskAlone() async throws {
        let job = try await claim()
        try await database.pool.query("UPDATE tasks SET visit = visit + 1 WHERE work_item = 'ORCH-7'")
        let outcome = try await failForGood(job, error: "old", canRetry: true)
        XCTAssertEqual(outcome, .failed)
        let task = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.status, .active)
    }

    /// Rescued into `failed` after its replicas died `max_attempts` times: no handler ever sees the
    /// failure, so the leader's sweep holds the task; a task with a live job is left alone.
    func testTheSweepHoldsATaskWhoseJobWasRescuedIntoFailedAndOnlyThatOne() async throws {
        _ = try await tasks.upsert(
            workItem: "ORCH-8", repo: "acme/orch", title: "t", description: "", labels: [], track: .full, auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: nil)
        let job = try await claim()
        let victim = try job.payload.decode(StageJobPayload.self).work_item
        try await database.pool.query(
            """
            UPDATE jobs SET attempt = max_attempts, lease_expires_at = now() - interval '1 second' WHERE id = $1
            """, [job.id])
        _ = try await jobs.rescueAbandoned(staleAfter: .seconds(60))
        let rescued = try await jobs.job(id: job.id)
        XCTAssertEqual(rescued?.status, .failed)

        let held = try await tasks.holdStranded()
        XCTAssertEqual(held, [victim])
        let task = try await tasks.task(workItem: victim)
        XCTAssertEqual(task?.state.status, .held)
        let reason = try await tasks.history(workItem: victim).last?.reason ?? ""
        XCTAssertTrue(
            reason.hasPrefix("stranded: its last stage job ended failed: abandoned by replica replica-a"), reason)
        let other = victim == "ORCH-7" ? "ORCH-8" : "ORCH-7"
        let untouched = try await tasks.task(workItem: other)
        XCTAssertEqual(untouched?.state.status, .active, "its job is still queued")
        let again = try await tasks.holdStranded()
        XCTAssertEqual(again, [], "a held task is not held twice")
    }

    /// An enqueue refused by the dedupe key (a job of that visit and try is queued or running
    /// already) rolls the transition back instead of leaving the task active with no job of its own.
    func testADedupeCollisionRollsTheTransitionBack() async throws {
        let job = try await claim()
        let payload = try JSONB(
            encoding: StageJobPayload(work_item: "ORCH-7", stage: "architecture", visit: 2, attempt: 0, feedback: nil))
        _ = try await jobs.enqueue([
            NewJob(kind: TaskStore.stageJobKind, payload: payload, dedupeKey: "stage:ORCH-7:architecture:v2:0")
        ])
        do {
            try await tasks.apply(
                .stagePassed, workItem: "ORCH-7", actor: "system", reason: "spec.md written",
                about: StageVisit(stage: .analysis, visit: 1),
                fence: job.lease)
            XCTFail("the collision must be refused")
        } catch let duplicate as DuplicateStageJob {
            XCTAssertEqual(duplicate.dedupeKey, "stage:ORCH-7:architecture:v2:0")
        }
        let task = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(task?.state.stage, .analysis, "nothing applied")
        XCTAssertEqual(task?.visit, 1)
        let still = try await jobs.job(id: job.id)
        XCTAssertEqual(still?.status, .running, "the job's completion rolled back with it")
    }

    /// A deploy handed over to its post-deploy watch: the watch job is the task's live job, so
    /// the sweep leaves the task alone while it watches; once the watch job is gone, it holds it.
    func testAQueuedPostDeployWatchKeepsTheTaskAliveAndItsLossHoldsIt() async throws {
        let stage = try await claim()
        _ = try await jobs.complete(try XCTUnwrap(stage.lease))
        let watch = try await jobs.enqueue(
            try PostDeployWatchJob.job(.init(work_item: "ORCH-7", visit: 1, merge_sha: "abc")))
        let none = try await tasks.holdStranded()
        XCTAssertEqual(none, [], "healthy-watching is not stranded")

        try await database.pool.query(
            "UPDATE jobs SET status = 'cancelled', last_error = 'cancelled by an operator' WHERE id = $1",
            [try XCTUnwrap(watch)])
        let held = try await tasks.holdStranded()
        XCTAssertEqual(held, ["ORCH-7"])
        let reason = try await tasks.history(workItem: "ORCH-7").last?.reason ?? ""
        XCTAssertTrue(reason.contains("cancelled by an operator"), reason)
    }
}
