import Foundation
import Store
import TestSupport
import XCTest

@testable import App

/// The serial gate, the freeze and task dependencies with real `orchestrator` replicas running the
/// example agent: what the task histories in the database show, not what a replica said.
final class RepositoryGateTests: XCTestCase {
    var harness: PipelineHarness!

    override func setUp() async throws {
        harness = try await PipelineHarness(suite: "repogates")
    }

    override func tearDown() async throws {
        await harness?.shutdown(testFailed: testRun?.hasSucceeded == false)
    }

    /// When the task first held a slot (past its first stage and active, awaiting approval or
    /// held) and when it was done.
    private func slot(_ workItem: String) async throws -> (from: Date, until: Date) {
        let history = try await TaskStore(pool: harness.database.pool).history(workItem: workItem)
        let from = try XCTUnwrap(
            history.first {
                $0.toStage != TaskStage.analysis.rawValue
                    && ["active", "awaiting_approval", "held"].contains($0.toStatus)
            }?.at)
        let until = try XCTUnwrap(history.first { $0.toStatus == "done" }?.at)
        return (from, until)
    }

    func testTwoTasksOfOneRepositoryNeverRunPastTheirFirstStageTogetherAndTheNextStartsAtOnce() async throws {
        let remote = try harness.makeRemote()
        let config = try harness.writeConfig(.init(cloneURL: remote.path), agent: ["--sleep", "1"])
        let a = try await harness.launch(0, config: config)
        let b = try await harness.launch(1, config: config)
        try await harness.sendIssue(to: a, sequence: 301)
        try await harness.sendIssue(to: b, sequence: 302)
        for workItem in ["ORCH-301", "ORCH-302"] {
            let task = try await harness.waitUntilAtRest(workItem, timeout: .seconds(180))
            XCTAssertEqual(task?.state.status, .done, workItem)
        }
        let first = try await slot("ORCH-301")
        let second = try await slot("ORCH-302")
        let (earlier, later) = first.from < second.from ? (first, second) : (second, first)
        XCTAssertLessThanOrEqual(earlier.until, later.from, "both tasks were past their first stage at once")
        // The later task waited at the gate and its next stage's agent started as soon as the
        // earlier one was done, with no human and no poll.
        let laterItem = first.from < second.from ? "ORCH-302" : "ORCH-301"
        let waited = try await TaskStore(pool: harness.database.pool).history(workItem: laterItem)
        XCTAssertTrue(waited.contains { $0.event == "gate_opened" }, "\(laterItem) waited for the gate")
        let runs = try await AgentRunStore(pool: harness.database.pool).runs(workItem: laterItem)
        let nextRun = try XCTUnwrap(runs.first { $0.stage != TaskStage.analysis.rawValue })
        let gap = nextRun.startedAt.timeIntervalSince(earlier.until)
        print("serial gate: next task's agent started \(Int(gap * 1000)) ms after the previous task was done")
        XCTAssertLessThan(gap, 1.0)
    }

    func testAFrozenRepositoryStartsNothingUntilUnfrozen() async throws {
        let remote = try harness.makeRemote()
        let config = try harness.writeConfig(.init(cloneURL: remote.path))
        let base = try await harness.launch(0, config: config)
        try await harness.database.pool.withTransaction { connection in
            _ = try await RepositoryGateStore.freeze(
                repo: "acme/orch", reason: "merge commit 1234 is red", workItem: "ORCH-300", on: connection)
        }
        try await harness.sendIssue(to: base, sequence: 303)
        let waiting = try await waitUntil(timeout: .seconds(60)) {
            try await self.harness.task("ORCH-303")?.state.status == .waiting
        }
        XCTAssertTrue(waiting, "past analysis, the task waits for the frozen repository")
        let (status, body) = try await harness.admin("POST", base, "serial-gate/unfreeze?repo=acme/orch")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body["cleared"] as? Int, 1)
        let task = try await harness.waitUntilAtRest("ORCH-303")
        XCTAssertEqual(task?.state.status, .done)
    }

    func testADependentTaskStartsOnlyOnceItsDependencyIsDone() async throws {
        let remote = try harness.makeRemote()
        let config = try harness.writeConfig(
            .init(cloneURL: remote.path, extra: ["max_active_tasks: 2"]))
        let base = try await harness.launch(0, config: config)
        let sent = try await sendPlaneIssue(
            to: base, secret: harness.secret, sequence: 311, description: "Export the report. Depends on ORCH-312")
        XCTAssertEqual(sent, 202)
        let blocked = try await waitUntil(timeout: .seconds(30)) {
            try await self.harness.task("ORCH-311")?.state.status == .blocked
        }
        XCTAssertTrue(blocked)
        try await harness.sendIssue(to: base, sequence: 312)
        for workItem in ["ORCH-312", "ORCH-311"] {
            let task = try await harness.waitUntilAtRest(workItem, timeout: .seconds(120))
            XCTAssertEqual(task?.state.status, .done, workItem)
        }
        let dependency = try await slot("ORCH-312")
        let runs = try await AgentRunStore(pool: harness.database.pool).runs(workItem: "ORCH-311")
        let firstRun = try XCTUnwrap(runs.first)
        XCTAssertGreaterThanOrEqual(firstRun.startedAt, dependency.until, "ORCH-311 ran before ORCH-312 was done")
    }
}
