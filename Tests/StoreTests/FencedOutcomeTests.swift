import Foundation
import Store
import TestSupport
import XCTest

/// A stage job's outcome commits with the job's completion, behind the job's fence, or not at all.
final class FencedOutcomeTests: DatabaseTestCase {
    var tasks: TaskStore!
    var jobs: JobStore!
    var replicas: ReplicaStore!

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        jobs = JobStore(pool: database.pool)
        replicas = ReplicaStore(pool: database.pool)
        for id in ["replica-a", "replica-b"] {
            try await replicas.register(id: id, name: id, host: "test", pid: 1, role: "worker")
        }
    }

    private func createTask() async throws -> TaskRecord {
        try await tasks.upsert(
            workItem: "ORCH-7", repo: "acme/orch", title: "t", description: "", labels: ["auto"], track: .full,
            auto: true,
            planeIssueID: nil, planeProjectID: nil, planeState: nil
        ).task
    }

    private func claim(_ replica: String) async throws -> JobLease {
        let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(30))
        return try XCTUnwrap(claimed.first?.lease)
    }

    /// The leader's rescue of a job whose lease ran out (a paused replica).
    private func expireAndRescue(_ lease: JobLease) async throws {
        try await database.pool.query(
            "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [lease.jobID])
        let rescued = try await jobs.rescueAbandoned(staleAfter: .seconds(60))
        XCTAssertEqual(rescued, [lease.jobID])
    }

    func testAnOutcomeWhoseFenceBrokeBeforeTheCommitAppliesNothing() async throws {
        let task = try await createTask()
        XCTAssertEqual(task.visit, 1)
        let about = task.currentVisit
        let stale = try await claim("replica-a")
        // Between the agent's exit and the outcome's commit, the job is rescued and re-claimed.
        try await expireAndRescue(stale)
        let current = try await claim("replica-b")
        XCTAssertEqual(current.jobID, stale.jobID)
        XCTAssertEqual(current.attempt, stale.attempt + 1)

        do {
            try await tasks.apply(
                .stagePassed, workItem: "ORCH-7", actor: "system", reason: "late", about: about, fence: stale)
            XCTFail("a broken fence must refuse the outcome")
        } catch let lost as JobFenceLost {
            XCTAssertEqual(lost.lease, stale)
        }
        var now = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(now?.state.stage, .analysis, "nothing moved")
        let noEvents = try await tasks.history(workItem: "ORCH-7")
        XCTAssertTrue(noEvents.isEmpty)
        let job = try await jobs.job(id: stale.jobID)
        XCTAssertEqual(job?.status, .running, "the new owner's job is untouched")
        XCTAssertEqual(job?.lockedBy, "replica-b")

        // The holder's outcome applies: transition, its event, the next stage's job and its own completion, together.
        try await tasks.apply(
            .stagePassed, workItem: "ORCH-7", actor: "system", reason: "spec.md written", about: about, fence: current)
        now = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(now?.state.stage, .architecture)
        XCTAssertEqual(now?.visit, 2)
        let done = try await jobs.job(id: current.jobID)
        XCTAssertEqual(done?.status, .completed)
        let next = try await jobs.jobs(workItem: "ORCH-7").first
        XCTAssertEqual(next?.status, .queued)
        let payload = try XCTUnwrap(next?.payload.decode(StageJobPayload.self))
        XCTAssertEqual(
            payload, StageJobPayload(work_item: "ORCH-7", stage: "architecture", visit: 2, attempt: 0, feedback: nil))
        let history = try await tasks.history(workItem: "ORCH-7").map(\.event)
        XCTAssertEqual(history, ["stage_passed"])

        // Applying the same outcome again (a duplicate run) is refused by the fence as well.
        do {
            try await tasks.apply(.stagePassed, workItem: "ORCH-7", actor: "system", about: about, fence: current)
            XCTFail("a completed job's fence is gone")
        } catch is JobFenceLost {}
    }

    func testAFencedGateFailureRecordsItsRetryOrItsLessonInTheSameTransaction() async throws {
        let task = try await createTask()
        let first = try await claim("replica-a")
        try await tasks.apply(
            .gateFailed(reason: "spec.md missing", attempt: 0), workItem: "ORCH-7", actor: "system",
            about: task.currentVisit,
            policy: StagePolicy(maxGateFailures: 2), fence: first)
        let retry = try await claim("replica-a")
        let retryJob = try await jobs.job(id: retry.jobID)
        let retryPayload = try XCTUnwrap(retryJob?.payload.decode(StageJobPayload.self))
        XCTAssertEqual(retryPayload.attempt, 1)
        XCTAssertEqual(retryPayload.feedback, "spec.md missing")
        try await tasks.apply(
            .gateFailed(reason: "spec.md still missing", attempt: 1), workItem: "ORCH-7", actor: "system",
            about: task.currentVisit,
            policy: StagePolicy(maxGateFailures: 2), fence: retry)
        let failed = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(failed?.state.status, .failed)
        let lessons = try await LessonStore(pool: database.pool).list(
            type: nil, status: nil, repo: nil, workItem: "ORCH-7", limit: 10)
        XCTAssertEqual(lessons.map(\.rootCause), ["spec.md still missing"])
        let events = try await tasks.history(workItem: "ORCH-7").map(\.event)
        XCTAssertEqual(events, ["stage_failed", "stage_failed_final"])
    }

    func testAStaleOutcomeRollsBackEvenWithItsFenceHeld() async throws {
        let task = try await createTask()
        let lease = try await claim("replica-a")
        // An operator moved the task on meanwhile (here: cancelled and retried into a new visit).
        try await tasks.apply(.stageFailed(final: true), workItem: "ORCH-7", actor: "admin")
        try await tasks.apply(.retry, workItem: "ORCH-7", actor: "admin")
        do {
            try await tasks.apply(
                .stagePassed, workItem: "ORCH-7", actor: "system", about: task.currentVisit, fence: lease)
            XCTFail("an outcome about visit 1 must not move visit 2")
        } catch let stale as StaleOutcome {
            XCTAssertEqual(stale.visit, 2)
        }
        let now = try await tasks.task(workItem: "ORCH-7")
        XCTAssertEqual(now?.state.stage, .analysis)
        let job = try await jobs.job(id: lease.jobID)
        XCTAssertEqual(job?.status, .running, "rolled back with the refused outcome; the worker completes it")
    }

    func testTheHeartbeatReportsLostJobsAndAStoppedReplicaClaimsNothing() async throws {
        _ = try await createTask()
        let stale = try await claim("replica-a")
        try await expireAndRescue(stale)
        let current = try await claim("replica-b")
        let beatA = try await jobs.heartbeat(replicaID: "replica-a", lease: .seconds(30), holding: [stale])
        XCTAssertEqual(beatA.lost, [stale.jobID], "replica-a learns the job is no longer its own")
        XCTAssertFalse(beatA.replicaStopped)
        let beatB = try await jobs.heartbeat(replicaID: "replica-b", lease: .seconds(30), holding: [current])
        XCTAssertEqual(beatB.lost, [])
        // A job its holder just finished itself (completed before the worker forgot it) is not lost.
        let own = try await jobs.enqueue(NewJob(kind: "quick"))!
        let claimedQuick = try await jobs.claim(
            queues: ["default"], replicaID: "replica-a", limit: 1, lease: .seconds(30))
        let quick = try XCTUnwrap(claimedQuick.first { $0.id == own }?.lease)
        let completed = try await jobs.complete(quick)
        XCTAssertTrue(completed)
        let afterCompletion = try await jobs.heartbeat(replicaID: "replica-a", lease: .seconds(30), holding: [quick])
        XCTAssertEqual(afterCompletion.lost, [])

        // The leader marks a silent replica stopped; when it comes back it is told so, its leases
        // are not extended, and it cannot claim.
        try await database.pool.query(
            "UPDATE replicas SET heartbeat_at = now() - interval '1 hour' WHERE id = 'replica-b'")
        let swept = try await replicas.sweep(staleAfter: .seconds(15), retention: .seconds(86400))
        XCTAssertEqual(swept.marked, 1)
        let back = try await jobs.heartbeat(replicaID: "replica-b", lease: .seconds(30), holding: [current])
        XCTAssertTrue(back.replicaStopped)
        XCTAssertEqual(back.lost, [current.jobID])
        try await jobs.enqueue(NewJob(kind: "other"))
        let claimed = try await jobs.claim(queues: ["default"], replicaID: "replica-b", limit: 5, lease: .seconds(30))
        XCTAssertEqual(claimed.count, 0, "a replica marked stopped never claims")
        let other = try await jobs.claim(queues: ["default"], replicaID: "replica-a", limit: 5, lease: .seconds(30))
        XCTAssertEqual(other.count, 1)
    }
}
