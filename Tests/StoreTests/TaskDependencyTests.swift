import Foundation
import Store
import TestSupport
import XCTest

/// Task dependencies in the database: a task waits `blocked` in its first stage until every
/// dependency is done and is started by the transaction that finishes the last one; an edge that
/// would close a cycle is refused, recorded and told on the task.
final class TaskDependencyTests: DatabaseTestCase {
    var tasks: TaskStore!

    override func setUp() async throws {
        try await super.setUp()
        tasks = TaskStore(pool: database.pool)
    }

    @discardableResult
    private func upsert(_ workItem: String, description: String) async throws -> TaskRecord {
        try await tasks.upsert(
            workItem: workItem, repo: "acme/\(workItem.lowercased())", title: workItem, description: description,
            labels: ["auto"], track: .full, auto: true, planeIssueID: nil, planeProjectID: nil, planeState: nil,
            dependsOn: DependencyLines.parse(description)
        ).task
    }

    private func finish(_ workItem: String) async throws {
        while let task = try await tasks.task(workItem: workItem), task.state.status == .active {
            _ = try await tasks.apply(
                .stagePassed, workItem: workItem, actor: "test", reason: "passed", about: task.currentVisit)
        }
    }

    private func status(_ workItem: String) async throws -> TaskStatus? {
        try await tasks.task(workItem: workItem)?.state.status
    }

    private func stageJobs(_ workItem: String) async throws -> Int {
        try await database.pool.query(
            "SELECT count(*) AS n FROM jobs WHERE kind = 'run_stage' AND payload->>'work_item' = $1", [workItem]
        ).first!.decode("n")
    }

    func testATaskWaitsForEveryDependencyIncludingOnesNotCreatedYet() async throws {
        let task = try await upsert("ORCH-3", description: "Depends on ORCH-1\nBlocked by ORCH-2")
        XCTAssertEqual(task.state.status, .blocked)
        let jobsWhileBlocked = try await stageJobs("ORCH-3")
        XCTAssertEqual(jobsWhileBlocked, 0, "nothing runs while it waits")
        try await upsert("ORCH-1", description: "")
        try await finish("ORCH-1")
        let stillBlocked = try await status("ORCH-3")
        XCTAssertEqual(stillBlocked, .blocked, "ORCH-2 is not even created")
        try await upsert("ORCH-2", description: "")
        try await finish("ORCH-2")
        // The transaction that finished ORCH-2 started ORCH-3.
        let afterLast = try await status("ORCH-3")
        XCTAssertEqual(afterLast, .active)
        let jobsAfter = try await stageJobs("ORCH-3")
        XCTAssertEqual(jobsAfter, 1)
        let history = try await tasks.history(workItem: "ORCH-3")
        XCTAssertEqual(history.map(\.event), ["blocked", "unblocked"])
    }

    func testAnEdgeClosingACycleIsRefusedRecordedAndToldOnTheTask() async throws {
        try await upsert("ORCH-10", description: "Depends on ORCH-11")
        try await upsert("ORCH-12", description: "Depends on ORCH-10")
        let closing = try await upsert("ORCH-11", description: "Depends on ORCH-12")
        XCTAssertEqual(closing.state.status, .active, "the refused edge does not block it")
        let edges = try await tasks.dependencies(workItem: "ORCH-11")
        XCTAssertTrue(edges.isEmpty)
        let (_, refused) = try await tasks.dependencyGraph()
        XCTAssertEqual(refused.first?.cycle, ["ORCH-11", "ORCH-12", "ORCH-10", "ORCH-11"])
        let told = try await tasks.history(workItem: "ORCH-11").first { $0.event == "dependency_refused" }
        XCTAssertTrue(told?.reason?.contains("ORCH-11 → ORCH-12 → ORCH-10 → ORCH-11") == true, told?.reason ?? "")
        // Through the API too, and a task may not wait for itself.
        let added = try await tasks.addDependencies(workItem: "ORCH-10", dependsOn: ["ORCH-10", "ORCH-12"])
        XCTAssertEqual(added?.refused.map(\.dependsOn), ["ORCH-10", "ORCH-12"])
    }

    func testTheDescriptionKeepsTheEdgesInStep() async throws {
        try await upsert("ORCH-20", description: "")
        let blocked = try await upsert("ORCH-21", description: "Depends on ORCH-20")
        XCTAssertEqual(blocked.state.status, .blocked)
        // The line is removed: the edge goes and the task starts.
        let edited = try await upsert("ORCH-21", description: "No longer waits.")
        XCTAssertEqual(edited.state.status, .active)
        let noEdges = try await tasks.dependencies(workItem: "ORCH-21")
        XCTAssertTrue(noEdges.isEmpty)
        // An API edge is the operator's: a description edit leaves it.
        _ = try await tasks.addDependencies(workItem: "ORCH-21", dependsOn: ["ORCH-20"])
        try await upsert("ORCH-21", description: "Still nothing here.")
        let apiEdge = try await tasks.dependencies(workItem: "ORCH-21").map(\.source)
        XCTAssertEqual(apiEdge, ["api"])
    }
}
