import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Workers

/// The leader's reconciler against the real database: it gives an active task its lost stage job
/// back (never a twin of a live one), opens a serial gate whose slot freed unheard (never a frozen
/// one), releases a blocked task whose dependencies are done, and leaves a failed job's task to the
/// `stranded-tasks` backstop.
final class ReconcilerTests: DatabaseTestCase {
    var tasks: TaskStore!
    var reconciler: Reconciler!
    let repo = "acme/app"

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        reconciler = Reconciler(pool: database.pool, logger: Logger(label: "reconciler-test"))
    }

    @discardableResult
    private func newTask(_ workItem: String, description: String = "") async throws -> TaskRecord {
        try await tasks.upsert(
            workItem: workItem, repo: repo, title: workItem, description: description, labels: ["auto"],
            track: .full, auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil,
            dependsOn: DependencyLines.parse(description)
        ).task
    }

    /// Passes the task's current stage, as its stage job's outcome would.
    private func pass(_ workItem: String) async throws {
        let task = try await tasks.task(workItem: workItem)
        try await tasks.apply(
            .stagePassed, workItem: workItem, actor: "test", reason: "passed", about: task?.currentVisit)
    }

    /// The task's `run_stage` jobs as `stage:visit:status`.
    private func stageJobs(_ workItem: String) async throws -> [String] {
        try await database.pool.query(
            """
            SELECT (payload->>'stage') || ':' || (payload->>'visit') || ':' || status AS job FROM jobs
            WHERE kind = 'run_stage' AND payload->>'work_item' = $1 ORDER BY id
            """,
            [workItem]
        ).rows.map { try $0.decode("job") }
    }

    func testATaskWhoseJobRowWasLostGetsItBackOnceAndALiveJobIsNotDuplicated() async throws {
        try await newTask("APP-1")
        let untouched = try await reconciler.run()
        XCTAssertEqual(untouched, 0, "a task with its queued job needs nothing")
        let before = try await stageJobs("APP-1")
        XCTAssertEqual(before, ["analysis:1:queued"])

        try await database.pool.query("DELETE FROM jobs WHERE payload->>'work_item' = 'APP-1'")
        let repaired = try await reconciler.run()
        XCTAssertEqual(repaired, 1)
        let after = try await stageJobs("APP-1")
        XCTAssertEqual(after, ["analysis:1:queued"], "the current visit's job, once")
        let history = try await tasks.history(workItem: "APP-1")
        XCTAssertEqual(history.last?.event, "reconciled")
        let statusAfterRepair = try await tasks.task(workItem: "APP-1")?.state.status
        XCTAssertEqual(statusAfterRepair, .active)

        let again = try await reconciler.run()
        XCTAssertEqual(again, 0, "the repaired job is live: no twin")
        let held = try await tasks.holdStranded()
        XCTAssertEqual(held, [], "the backstop finds nothing to hold")
        let jobsAfterBackstop = try await stageJobs("APP-1")
        XCTAssertEqual(jobsAfterBackstop, ["analysis:1:queued"])
    }

    func testADeployStillWatchingGetsItsWatchJobBackNotAnotherDeploy() async throws {
        try await newTask("APP-1")
        // The deploy handed over to its watch (the deploy job completed), then the watch job was lost.
        try await database.pool.query(
            "UPDATE tasks SET stage = 'deploy', visit = 6 WHERE work_item = 'APP-1'")
        try await database.pool.query(
            """
            UPDATE jobs SET status = 'completed', payload = jsonb_set(jsonb_set(payload, '{stage}', '"deploy"'), '{visit}', '6')
            WHERE payload->>'work_item' = 'APP-1'
            """)
        try await database.pool.query(
            """
            INSERT INTO deploy_watches (work_item, repo, visit, merge_sha, health_url)
            VALUES ('APP-1', $1, 6, 'abc123', 'http://127.0.0.1:9/health')
            """, [repo])
        let repaired = try await reconciler.run()
        XCTAssertEqual(repaired, 1)
        let watches: [String] = try await database.pool.query(
            "SELECT payload->>'merge_sha' AS sha FROM jobs WHERE kind = $1 AND status = 'queued'",
            [PostDeployWatchJob.kind]
        ).rows.map { try $0.decode("sha") }
        XCTAssertEqual(watches, ["abc123"])
        let deploys = try await stageJobs("APP-1")
        XCTAssertEqual(deploys, ["deploy:6:completed"], "the deploy is not run again")
        let again = try await reconciler.run()
        XCTAssertEqual(again, 0)
    }

    func testAStageJobThatFailedIsLeftToTheBackstopWhichHoldsTheTask() async throws {
        try await newTask("APP-1")
        try await database.pool.query(
            "UPDATE jobs SET status = 'failed', last_error = 'boom' WHERE payload->>'work_item' = 'APP-1'")
        let repaired = try await reconciler.run()
        XCTAssertEqual(repaired, 0, "a failed job is an error for a human, not a lost row")
        let held = try await tasks.holdStranded()
        XCTAssertEqual(held, ["APP-1"])
        let heldStatus = try await tasks.task(workItem: "APP-1")?.state.status
        XCTAssertEqual(heldStatus, .held)
    }

    func testAGateWhoseSlotFreedUnheardOpensButAFrozenOneStaysShut() async throws {
        try await RepositoryGateStore(pool: database.pool).configure([repo: 1])
        try await newTask("APP-1")
        try await newTask("APP-2")
        try await pass("APP-1")
        try await pass("APP-2")
        let waitingStatus = try await tasks.task(workItem: "APP-2")?.state.status
        XCTAssertEqual(waitingStatus, .waiting)
        // APP-1 leaves its slot without the transition that would have opened the gate.
        try await database.pool.query(
            "UPDATE tasks SET status = 'cancelled' WHERE work_item = 'APP-1'")
        let repo = self.repo
        try await database.pool.withTransaction {
            _ = try await RepositoryGateStore.freeze(repo: repo, reason: "red main", workItem: nil, on: $0)
        }
        let whileFrozen = try await reconciler.run()
        XCTAssertEqual(whileFrozen, 0)
        let frozenStatus = try await tasks.task(workItem: "APP-2")?.state.status
        XCTAssertEqual(frozenStatus, .waiting, "frozen stays shut")

        try await database.pool.query("UPDATE repository_gates SET frozen = false WHERE repo = $1", [repo])
        let opened = try await reconciler.run()
        XCTAssertEqual(opened, 1)
        let task = try await tasks.task(workItem: "APP-2")
        XCTAssertEqual(task?.state.status, .active)
        XCTAssertEqual(task?.state.stage, .architecture)
        let jobs = try await stageJobs("APP-2")
        XCTAssertTrue(jobs.contains { $0.hasPrefix("architecture:") && $0.hasSuffix(":queued") }, "\(jobs)")
        let nothingLeft = try await reconciler.run()
        XCTAssertEqual(nothingLeft, 0)
    }

    func testABlockedTaskWhoseDependenciesAreDoneIsReleased() async throws {
        let blocked = try await newTask("APP-3", description: "Depends on APP-1")
        XCTAssertEqual(blocked.state.status, .blocked)
        try await newTask("APP-1")
        // APP-1 finished without the transition that releases its dependents.
        try await database.pool.query("UPDATE tasks SET status = 'done', stage = 'done' WHERE work_item = 'APP-1'")
        let released = try await reconciler.run()
        XCTAssertEqual(released, 1)
        let releasedStatus = try await tasks.task(workItem: "APP-3")?.state.status
        XCTAssertEqual(releasedStatus, .active)
        let releasedJobs = try await stageJobs("APP-3")
        XCTAssertEqual(releasedJobs.count, 1, "\(releasedJobs)")
        XCTAssertTrue(
            releasedJobs.allSatisfy { $0.hasPrefix("analysis:") && $0.hasSuffix(":queued") }, "\(releasedJobs)")
    }
}
