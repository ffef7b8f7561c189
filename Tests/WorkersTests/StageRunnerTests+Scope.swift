import Foundation
import Store
import XCTest

@testable import Workers

/// Each gate of the stage runner with its kill switch on but the repository out of its scope
/// (`gates: {name: false}` or left out of `ORCH_<GATE>_REPOS`): it does not decide for that
/// repository, exactly as if it were switched off.
extension StageRunnerTests {
    func testCoverageOutOfScopeNeitherRunsNorJudges() async throws {
        _ = try await CoverageStore(pool: database.pool).setBaseline(repo: "acme/orch", value: 90)
        repo.coverageCommand = ["sh", "-c", "echo 'TOTAL 100 20 80%'"]
        repo.gates.outOfScope = [.coverageGate]
        let runner = runner()
        for stage in ["analysis", "architecture", "development"] { try await step(stage, runner) }

        let event = try await lastEvent()
        XCTAssertEqual(event.event, "stage_passed", event.reason ?? "")
        let measured = try await CoverageStore(pool: database.pool).measurements(workItem: workItem)
        XCTAssertEqual(measured.count, 0, "coverage_command did not run")
    }

    /// Out of the merge gate's scope the merge takes no lease (another holder of the repository's
    /// lease does not make it wait) and the merge commit's red CI does not hold the task.
    func testMergeOutOfScopeTakesNoLeaseAndDoesNotVerifyTheMergeCommit() async throws {
        repo.gates.outOfScope = [.mergeGate]
        let runner = runner()
        let head = try await walkToMerge(runner)
        gitea.state.withLock {
            $0.ci[head] = .success
            $0.ci[InMemoryGitea.mergeCommit] = .failure
        }
        let context = try await claim("merge")
        let leases = MergeLeaseStore(pool: database.pool)
        let ran = try await leases.withLease(repo: "acme/orch", workItem: "ORCH-0", replicaID: "another") { _ in
            try await run(context, runner)
            return true
        }
        XCTAssertEqual(ran, true, "the test held the lease while the merge ran")
        XCTAssertEqual(gitea.state.withLock { $0.merges.map(\.head) }, [head])
        let task = try await task()
        XCTAssertEqual(task.state.stage, .deploy, "not held for the merge commit's red CI")
        let frozen = try await RepositoryGateStore(pool: database.pool).gates().first { $0.repo == "acme/orch" }
        XCTAssertNotEqual(frozen?.frozen, true)
    }

    func testAWatchedDeployOutOfScopePassesAtOnce() async throws {
        repo.deployCommand = ["true"]
        repo.healthURL = "http://127.0.0.1:9/health"
        repo.gates.outOfScope = [.postDeploy]
        let runner = runner(withGitea: false)
        try await walkToMerge(runner)
        try await step("merge", runner)
        try await step("deploy", runner)

        let task = try await task()
        XCTAssertEqual(task.state.stage, .done)
        let watch = try await DeployWatchStore(pool: database.pool).watch(workItem: workItem, visit: task.visit)
        XCTAssertNil(watch, "no watch was created")
    }
}
