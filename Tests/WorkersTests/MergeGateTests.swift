import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

/// The merge gate with Gitea in memory (`StageRunnerStandIns.swift`) and the real database: the
/// merge commit's CI decides whether the merge stage passes (green → deploy; red, or no success
/// within `merge_verify.window` → held, repository frozen, merge_hold lesson), and the merge lease
/// keeps two merges of one repository (each with its verification) from ever overlapping, the
/// waiting one postponed rather than holding a worker slot.
final class MergeGateTests: DatabaseTestCase {
    var tasks: TaskStore!
    var jobs: JobStore!
    var world: StandInWorld!
    var gitea: InMemoryGitea { world.gitea }
    let replica = "replica-merge-gate"
    let repoName = "acme/orch"

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        jobs = JobStore(pool: database.pool)
        world = try await StandInWorld(pool: database.pool, replicaID: replica)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        world?.remove()
    }

    // MARK: - Harness

    private func runner(window: Duration = .seconds(60), mergeGate: Bool = true, alerts: Alerts = .off) -> StageRunner {
        let repo = RepositorySettings(
            project: "ORCH", planeProjectID: nil, repo: repoName, cloneURL: "/nonexistent", defaultBranch: "main",
            testCommand: nil, coverageCommand: nil, deployCommand: nil, healthURL: nil, ci: .required,
            ciTimeout: .seconds(3600), gates: RepositoryGates(mergeVerifyWindow: window))
        return StageRunner(
            settings: .init(
                repos: [repo], agents: [:], ciPollInterval: .milliseconds(100),
                switches: GateSwitches(mergeGate: mergeGate)),
            pool: database.pool, agent: world.agent, git: world.git, gitea: gitea, alerts: alerts)
    }

    /// Tasks `workItems` of one repository at merge, task N with pull request #N+1 (head green);
    /// returns their claimed merge jobs by work item.
    private func tasksAtMerge(_ workItems: [String]) async throws -> [String: JobContext] {
        for (index, workItem) in workItems.enumerated() {
            _ = try await tasks.upsert(
                workItem: workItem, repo: repoName, title: workItem, description: "", labels: ["auto"], track: .full,
                auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
            let number = index + 1
            let head = String(format: "%040d", number).replacingOccurrences(of: "0", with: "a")
            gitea.state.withLock {
                $0.pulls[number] = PullRequestSnapshot(
                    state: "open", merged: false, mergeSHA: nil, headSHA: head, updatedAt: Date())
                $0.branches[number] = workItem
                $0.ci[head] = .success
            }
        }
        var merges: [String: JobContext] = [:]
        // The stage jobs come in any order: pass each agent stage, keep the merge jobs claimed.
        while merges.count < workItems.count {
            let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 1, lease: .seconds(60))
            let job = try XCTUnwrap(claimed.first, "a stage job is due")
            let lease = try XCTUnwrap(job.lease)
            let payload = try RunStageJob.payload(of: job)
            if payload.stage == "merge" {
                merges[payload.work_item] = JobContext(job: job, lease: lease, baseLogger: Logger(label: "test"))
                continue
            }
            let task = try await tasks.task(workItem: payload.work_item)
            _ = try await tasks.apply(
                .stagePassed, workItem: payload.work_item, actor: "test", reason: "passed",
                about: task?.currentVisit, fence: lease)
        }
        for (index, workItem) in workItems.enumerated() {
            let number = index + 1
            let head = try XCTUnwrap(gitea.state.withLock { $0.pulls[number]?.headSHA })
            try await database.pool.withTransaction { connection in
                try await TaskStore.recordOwnPullRequest(
                    workItem: workItem, number: number, headSHA: head, on: connection)
            }
        }
        return merges
    }

    private func task(_ workItem: String) async throws -> TaskRecord {
        let task = try await tasks.task(workItem: workItem)
        return try XCTUnwrap(task)
    }

    private func lastReason(_ workItem: String) async throws -> String {
        try await tasks.history(workItem: workItem).last?.reason ?? ""
    }

    /// Waits until pull request `number` was merged by Gitea.
    private func waitForMerge(of number: Int) async throws {
        let merged = await waitUntil(timeout: .seconds(30)) {
            self.gitea.state.withLock { $0.mergeLog.contains { $0.number == number } }
        }
        XCTAssertTrue(merged, "PR #\(number) merged")
    }

    // MARK: - Verification

    func testAGreenMergeCommitPassesToDeployUnderTheLeaseThenReleasesIt() async throws {
        let merges = try await tasksAtMerge(["ORCH-1"])
        let context = try XCTUnwrap(merges["ORCH-1"])
        gitea.state.withLock { $0.mergeCommitCI = .pending }
        let runner = runner()
        let jobs = jobs!
        let running = Task { try await runMerge(context, runner, jobs: jobs) }
        try await waitForMerge(of: 1)

        // Merged, CI pending: the task stays at merge, verifying, the lease shown as held.
        let store = MergeLeaseStore(pool: database.pool)
        let verifying = try await waitUntil(timeout: .seconds(10)) {
            try await store.summary().verifying.map(\.workItem) == ["ORCH-1"]
        }
        XCTAssertTrue(verifying)
        let summary = try await store.summary()
        XCTAssertEqual(summary.leases.map(\.workItem), ["ORCH-1"])
        XCTAssertEqual(summary.leases.first?.replicaID, replica)
        XCTAssertEqual(summary.verifying.first?.mergeSHA, InMemoryGitea.mergeCommit)
        // The `/queue` block says the same.
        let block = try await MergeVerifyBlock(enabled: true).read(from: database.pool, leader: nil)
        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: JSONEncoder.snakeCase.encode(block)) as? [String: Any])
        XCTAssertEqual(json["enabled"] as? Bool, true)
        XCTAssertEqual(json["scope"] as? String, "all")
        XCTAssertEqual((json["leases"] as? [[String: Any]])?.first?["work_item"] as? String, "ORCH-1")
        XCTAssertEqual((json["leases"] as? [[String: Any]])?.first?["replica_id"] as? String, replica)
        XCTAssertEqual((json["verifying"] as? [[String: Any]])?.first?["ci_state"] as? String, nil)
        XCTAssertEqual(
            (json["verifying"] as? [[String: Any]])?.first?["merge_sha"] as? String, InMemoryGitea.mergeCommit)
        XCTAssertEqual(json["waiting_jobs"] as? Int, 0)
        XCTAssertEqual((json["holds"] as? [Any])?.count, 0)
        var task = try await task("ORCH-1")
        XCTAssertEqual(task.state.stage, .merge)
        XCTAssertEqual(task.state.status, .active)

        gitea.state.withLock { $0.ci[InMemoryGitea.mergeCommit] = .success }
        let postponed = try await running.value
        XCTAssertNil(postponed)
        task = try await self.task("ORCH-1")
        XCTAssertEqual(task.state.stage, .deploy, "passed on the verified merge commit")
        XCTAssertEqual(task.mergeSHA, InMemoryGitea.mergeCommit)
        let after = try await store.summary()
        XCTAssertTrue(after.leases.isEmpty, "released")
        XCTAssertTrue(after.verifying.isEmpty)
        let rows = try await database.pool.query("SELECT count(*) AS n FROM merge_leases").first?.decode(
            "n", as: Int.self)
        XCTAssertEqual(rows, 0, "the holder's row is removed on release")
    }

    func testARedMergeCommitHoldsTheTaskAndFreezesTheRepository() async throws {
        let merges = try await tasksAtMerge(["ORCH-1"])
        gitea.state.withLock { $0.ci[InMemoryGitea.mergeCommit] = .failure }
        try await runMerge(try XCTUnwrap(merges["ORCH-1"]), runner(alerts: Alerts(jobs: jobs)), jobs: jobs)

        let task = try await task("ORCH-1")
        XCTAssertEqual(task.state.status, .held)
        XCTAssertEqual(task.state.stage, .merge)
        let reason = try await lastReason("ORCH-1")
        XCTAssertTrue(reason.contains("CI failed on merge commit mmmmmmmmmmmm"), reason)
        let gate = try await RepositoryGateStore(pool: database.pool).gate(repo: repoName)
        XCTAssertEqual(gate?.frozen, true, "frozen with the hold")
        XCTAssertEqual(gate?.frozenWorkItem, "ORCH-1")
        XCTAssertEqual(gate?.frozenReason, reason)
        let lessons = try await LessonStore(pool: database.pool).list(
            type: "merge_hold", status: nil, repo: nil, workItem: "ORCH-1", limit: 5)
        XCTAssertEqual(lessons.count, 1, "the hold records a merge_hold lesson")
        let alert = try await database.pool.query(
            "SELECT payload->>'text' AS text FROM jobs WHERE kind = 'notify.alert'"
        ).first?.decode("text", as: String.self)
        XCTAssertTrue(alert?.contains("ORCH-1 held at merge and acme/orch frozen: CI failed") == true, alert ?? "none")
        let summary = try await MergeLeaseStore(pool: database.pool).summary()
        XCTAssertEqual(summary.holds.map(\.workItem), ["ORCH-1"])
        XCTAssertEqual(summary.holds.first?.reason, reason)
        XCTAssertTrue(summary.leases.isEmpty)
    }

    func testNoStatusOnTheMergeCommitUntilTheWindowEndsHoldsAndFreezesThenTheLeaseIsFree() async throws {
        let merges = try await tasksAtMerge(["ORCH-1", "ORCH-2"])
        // `{}`: Gitea has no status for the merge commit, which is never success.
        gitea.state.withLock { $0.mergeCommitCI = nil }
        let started = ContinuousClock.now
        try await runMerge(try XCTUnwrap(merges["ORCH-1"]), runner(window: .seconds(1)), jobs: jobs)
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .seconds(1), "waited the whole window")

        let task = try await task("ORCH-1")
        XCTAssertEqual(task.state.status, .held)
        let reason = try await lastReason("ORCH-1")
        XCTAssertTrue(reason.contains("no CI success on merge commit mmmmmmmmmmmm"), reason)
        XCTAssertTrue(reason.contains("within 1s"), reason)
        let gate = try await RepositoryGateStore(pool: database.pool).gate(repo: repoName)
        XCTAssertEqual(gate?.frozen, true)

        // The lease was released after the verification: the second task's merge takes it.
        gitea.state.withLock { $0.ci[InMemoryGitea.mergeCommit(of: 2)] = .success }
        let postponed = try await runMerge(try XCTUnwrap(merges["ORCH-2"]), runner(), jobs: jobs)
        XCTAssertNil(postponed, "not kept waiting for the lease")
        let second = try await self.task("ORCH-2")
        XCTAssertEqual(second.state.stage, .deploy)
    }

    func testARetriedMergeResumesTheVerificationWithoutMergingTwice() async throws {
        let merges = try await tasksAtMerge(["ORCH-1"])
        let context = try XCTUnwrap(merges["ORCH-1"])
        gitea.state.withLock { $0.mergeCommitCI = .pending }
        let runner = runner()
        let jobs = jobs!
        // The first run merges, then dies while verifying (its task cancelled).
        let first = Task { try await runMerge(context, runner, jobs: jobs) }
        try await waitForMerge(of: 1)
        first.cancel()
        _ = try? await first.value
        // A cancelled run cannot unlock (its queries are cancelled too): closing its session
        // frees the lease, as the server notices the connection gone.
        let leases = MergeLeaseStore(pool: database.pool)
        let freed = try await waitUntil(timeout: .seconds(10)) { try await leases.live().isEmpty }
        XCTAssertTrue(freed, "the lease went with the run")

        // The retry finds the pull request merged and verifies its merge commit.
        gitea.state.withLock { $0.ci[InMemoryGitea.mergeCommit] = .success }
        try await runMerge(context, runner, jobs: jobs)
        let task = try await task("ORCH-1")
        XCTAssertEqual(task.state.stage, .deploy)
        XCTAssertEqual(gitea.state.withLock { $0.merges.count }, 1, "merged once")
    }

    func testWithTheMergeGateOffMergesWithoutLeaseOrVerification() async throws {
        let merges = try await tasksAtMerge(["ORCH-1"])
        gitea.state.withLock { $0.mergeCommitCI = nil }
        // Another merge of the repository holds the lease: with the gate off nobody asks for it.
        let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.merge, text: repoName)
        let runner = runner(mergeGate: false)
        let jobs = jobs!
        let context = try XCTUnwrap(merges["ORCH-1"])
        let postponed = try await database.pool.withTryAdvisoryLock(key) { _ in
            try await runMerge(context, runner, jobs: jobs)
        }
        guard let ran = postponed else { return XCTFail("the lock was free for the test to take") }
        XCTAssertNil(ran, "merged without waiting")
        let task = try await task("ORCH-1")
        XCTAssertEqual(task.state.stage, .deploy, "no verification of the merge commit")
        let rows = try await database.pool.query("SELECT count(*) AS n FROM merge_leases").first?.decode(
            "n", as: Int.self)
        XCTAssertEqual(rows, 0)
    }

    // MARK: - One merge per repository at a time

    func testTwoMergesOfOneRepositoryNeverOverlapAndTheWaitingOneIsPostponed() async throws {
        let merges = try await tasksAtMerge(["ORCH-1", "ORCH-2"])
        gitea.state.withLock { $0.mergeCommitCI = .pending }
        // Two runners: two replicas' merges, each lease on a connection of its own.
        let first = runner()
        let second = runner()
        let jobs = jobs!
        let contextA = try XCTUnwrap(merges["ORCH-1"])
        let contextB = try XCTUnwrap(merges["ORCH-2"])
        let runningA = Task { try await runMerge(contextA, first, jobs: jobs) }
        try await waitForMerge(of: 1)

        // B finds the lease taken: it is postponed at once, not kept in its worker slot.
        let started = ContinuousClock.now
        let postponed = try await runMerge(contextB, second, jobs: jobs)
        let waited = ContinuousClock.now - started
        print("merge-gate: the waiting merge gave its slot back after \(waited)")
        XCTAssertLessThan(waited, .seconds(5))
        let reason = try XCTUnwrap(postponed).reason
        XCTAssertTrue(reason.hasPrefix(MergeLeaseStore.waitReason), reason)
        XCTAssertEqual(gitea.state.withLock { $0.merges.count }, 1, "B did not merge")
        let job = try await jobs.jobs(workItem: "ORCH-2").first { $0.id == contextB.job.id }
        XCTAssertEqual(job?.status, .queued, "postponed, not failed")
        XCTAssertEqual(job.map { $0.maxAttempts - $0.attempt }, 5, "the postponement spent no attempt")
        let summary = try await MergeLeaseStore(pool: database.pool).summary()
        XCTAssertEqual(summary.waitingJobs, 1)
        XCTAssertEqual(summary.leases.map(\.workItem), ["ORCH-1"])
        // A merge job waiting for the lease is queued: the stranded-tasks duty leaves its task alone.
        let stranded = try await tasks.holdStranded()
        XCTAssertEqual(stranded, [])

        // A's merge commit turns green: A passes and releases the lease, which makes B due at once
        // (its postponement pushed an hour out first, so only the wake-up can make it due).
        try await database.pool.query(
            "UPDATE jobs SET run_at = now() + interval '1 hour' WHERE id = $1", [contextB.job.id])
        gitea.state.withLock { $0.ci[InMemoryGitea.mergeCommit] = .success }
        _ = try await runningA.value
        let due = try await database.pool.query(
            "SELECT run_at <= now() AS due FROM jobs WHERE id = $1", [contextB.job.id]
        )
        .first?.decode("due", as: Bool.self)
        XCTAssertEqual(due, true, "the release woke the waiting merge")
        // (A's deploy job is due too.)
        let claimed = try await jobs.claim(queues: ["default"], replicaID: replica, limit: 10, lease: .seconds(60))
        let job2 = try XCTUnwrap(claimed.first { $0.id == contextB.job.id }, "B's merge is due")
        gitea.state.withLock { $0.ci[InMemoryGitea.mergeCommit(of: 2)] = .success }
        let retried = JobContext(job: job2, lease: try XCTUnwrap(job2.lease), baseLogger: Logger(label: "test"))
        let again = try await runMerge(retried, second, jobs: jobs)
        XCTAssertNil(again)

        let log = gitea.state.withLock { $0.mergeLog }
        XCTAssertEqual(log.map(\.number), [1, 2])
        guard log.count == 2 else { return }
        let endA = try XCTUnwrap(log[0].verified, "A's verification ended")
        XCTAssertLessThan(endA, log[1].merged, "B merged only after A's merge and verification")
        for workItem in ["ORCH-1", "ORCH-2"] {
            let task = try await task(workItem)
            XCTAssertEqual(task.state.stage, .deploy, workItem)
        }
    }
}

/// Runs a merge job as the queue worker would: a postponement is recorded (no attempt spent)
/// and returned; otherwise the job is completed unless its outcome did.
@discardableResult
private func runMerge(_ context: JobContext, _ runner: StageRunner, jobs: JobStore) async throws -> JobPostponed? {
    do {
        try await runner.run(context)
    } catch let postponed as JobPostponed {
        _ = try await postponed.record(context.lease, in: jobs)
        return postponed
    }
    if !context.completion.isCompleted { _ = try await jobs.complete(context.lease) }
    return nil
}
