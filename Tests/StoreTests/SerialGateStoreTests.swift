import Foundation
import Store
import TestSupport
import XCTest

/// The serial gate in the database: a task past its first stage takes one of its repository's
/// slots under the gate row's lock, waits when none is free or the repository is frozen, and is
/// started by the transaction that frees a slot (or by the unfreeze), with no poll in between.
final class SerialGateStoreTests: DatabaseTestCase {
    var tasks: TaskStore!
    let repo = "acme/app"
    override var databaseMaxConnections: Int { 20 }

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
        try await RepositoryGateStore(pool: database.pool).configure([repo: 1])
    }

    private func newTask(_ workItem: String, repo: String? = nil) async throws {
        _ = try await tasks.upsert(
            workItem: workItem, repo: repo ?? self.repo, title: workItem, description: "", labels: ["auto"],
            track: .full, auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil)
    }

    /// Passes the task's current stage, as its stage job's outcome would.
    @discardableResult
    private func pass(_ workItem: String, on store: TaskStore? = nil) async throws -> TaskRecord {
        let store = store ?? tasks!
        let task = try await store.task(workItem: workItem)
        let passed = try await store.apply(
            .stagePassed, workItem: workItem, actor: "test", reason: "passed", about: task?.currentVisit)
        return try XCTUnwrap(passed)
    }

    private func state(_ workItem: String) async throws -> TaskState? {
        try await tasks.task(workItem: workItem)?.state
    }

    /// The stages of the task's queued stage jobs.
    private func queuedStages(_ workItem: String) async throws -> [String] {
        try await database.pool.query(
            "SELECT payload->>'stage' AS stage FROM jobs WHERE kind = 'run_stage' AND payload->>'work_item' = $1 AND status = 'queued' ORDER BY id",
            [workItem]
        ).rows.map { try $0.decode("stage") }
    }

    func testTheSecondTaskWaitsPastItsFirstStageAndStartsWhenTheFirstIsDone() async throws {
        try await newTask("APP-1")
        try await newTask("APP-2")
        try await pass("APP-1")
        let waiting = try await pass("APP-2")
        XCTAssertEqual(waiting.state.stage, .architecture)
        XCTAssertEqual(waiting.state.status, .waiting)
        let queuedBefore = try await queuedStages("APP-2")
        XCTAssertEqual(queuedBefore, ["analysis"], "nothing past analysis is queued for it")
        let history = try await tasks.history(workItem: "APP-2")
        XCTAssertTrue(history.last?.reason?.contains("serial gate is full (1 of 1 active)") == true)

        // APP-1 walks to done: its last transition starts APP-2 in the same transaction.
        for _ in 0..<5 { try await pass("APP-1") }
        let done = try await state("APP-1")
        XCTAssertEqual(done?.status, .done)
        let started = try await tasks.task(workItem: "APP-2")
        XCTAssertEqual(started?.state.status, .active)
        let queuedAfter = try await queuedStages("APP-2")
        XCTAssertEqual(queuedAfter, ["analysis", "architecture"])
        let lastEvent = try await tasks.history(workItem: "APP-2").last?.event
        XCTAssertEqual(lastEvent, "gate_opened")
    }

    func testAFrozenRepositoryStartsNothingUntilUnfrozen() async throws {
        try await database.pool.withTransaction { connection in
            _ = try await RepositoryGateStore.freeze(
                repo: self.repo, reason: "merge commit abc is red", workItem: "APP-0", on: connection)
        }
        try await newTask("APP-3")
        let waiting = try await pass("APP-3")
        XCTAssertEqual(waiting.state.status, .waiting)
        let saysFrozen = try await tasks.history(workItem: "APP-3").last?.reason?.contains("frozen")
        XCTAssertTrue(saysFrozen == true)

        let first = try await tasks.unfreeze(repo: repo)
        XCTAssertEqual(first.cleared, 1)
        XCTAssertEqual(first.started, ["APP-3"])
        let afterUnfreeze = try await state("APP-3")?.status
        XCTAssertEqual(afterUnfreeze, .active)
        // Idempotent.
        let again = try await tasks.unfreeze(repo: repo)
        XCTAssertEqual(again.cleared, 0)
        XCTAssertEqual(again.started, [])
        let gate = try await RepositoryGateStore(pool: database.pool).gate(repo: repo)
        XCTAssertEqual(gate?.frozen, false)
    }

    /// The issue's story: a red merge commit holds the task and freezes the repository; the next
    /// task waits; an unfreeze lets it start (the held task gave its slot up).
    func testAHoldAndAFreezeStopTheNextTaskUntilUnfrozen() async throws {
        try await newTask("APP-7")
        try await newTask("APP-8")
        for _ in 0..<4 { try await pass("APP-7") }
        let observed1 = try await state("APP-7")?.stage
        XCTAssertEqual(observed1, .merge)
        try await pass("APP-8")
        let observed2 = try await state("APP-8")?.status
        XCTAssertEqual(observed2, .waiting)
        _ = try await tasks.apply(.held, workItem: "APP-7", actor: "test", reason: "merge commit m7 is red") {
            connection in
            _ = try await RepositoryGateStore.freeze(
                repo: self.repo, reason: "merge commit m7 is red", workItem: "APP-7", on: connection)
        }
        let observed3 = try await state("APP-8")?.status
        XCTAssertEqual(observed3, .waiting, "frozen: the freed slot is not taken")
        let unfrozen = try await tasks.unfreeze(repo: repo)
        XCTAssertEqual(unfrozen.started, ["APP-8"])
        let observed4 = try await state("APP-7")?.status
        XCTAssertEqual(observed4, .held)
    }

    func testACancelledTaskFreesItsSlotAndOtherRepositoriesAreNotAffected() async throws {
        try await newTask("APP-4")
        try await newTask("APP-5")
        try await newTask("OTHER-1", repo: "acme/other")
        try await pass("APP-4")
        try await pass("APP-5")
        let otherRepository = try await pass("OTHER-1").state.status
        XCTAssertEqual(otherRepository, .active, "another repository has its own gate")
        let beforeCancel = try await state("APP-5")?.status
        XCTAssertEqual(beforeCancel, .waiting)
        _ = try await tasks.apply(.cancel, workItem: "APP-4", actor: "test", reason: "no longer needed")
        let afterCancel = try await state("APP-5")?.status
        XCTAssertEqual(afterCancel, .active)
    }

    func testTasksPassingTheirFirstStageAtOnceOnTwoReplicasNeverExceedTheLimit() async throws {
        try await RepositoryGateStore(pool: database.pool).configure([repo: 2])
        let workItems = (1...10).map { "APP-\(100 + $0)" }
        for workItem in workItems { try await newTask(workItem) }
        let other = TaskStore(pool: database.makePool(maxConnections: 10))
        let tasks = self.tasks!
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, workItem) in workItems.enumerated() {
                let store = index % 2 == 0 ? tasks : other
                group.addTask {
                    let task = try await store.task(workItem: workItem)
                    _ = try await store.apply(
                        .stagePassed, workItem: workItem, actor: "test", reason: "passed", about: task?.currentVisit)
                }
            }
            try await group.waitForAll()
        }
        var statuses: [TaskStatus] = []
        for workItem in workItems { statuses.append(try await state(workItem)?.status ?? .failed) }
        XCTAssertEqual(statuses.filter { $0 == .active }.count, 2)
        XCTAssertEqual(statuses.filter { $0 == .waiting }.count, 8)
    }
}
