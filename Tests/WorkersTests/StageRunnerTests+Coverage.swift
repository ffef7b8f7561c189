import Foundation
import Store
import XCTest

@testable import Workers

/// The coverage gate through the stage runner: `coverage_command` runs in the task's worktree
/// after the development gate's other checks, a measurement below the baseline fails the stage
/// with both numbers, and the baseline rises only when the task merges.
extension StageRunnerTests {
    private var coverage: CoverageStore { CoverageStore(pool: database.pool) }

    /// A `coverage_command` that prints `output`, as coverage.py would.
    private func measure(printing output: String) {
        repo.coverageCommand = ["sh", "-c", "printf '%s\\n' \"$0\"", output]
    }

    /// Runs analysis, architecture and development; returns development's event.
    private func develop(_ runner: StageRunner) async throws -> TaskHistoryEntry {
        for stage in ["analysis", "architecture", "development"] { try await step(stage, runner) }
        return try await lastEvent()
    }

    func testCoverageBelowTheBaselineFailsTheDevelopmentGateWithBothNumbers() async throws {
        _ = try await coverage.setBaseline(repo: "acme/orch", value: 90)
        measure(printing: "TOTAL 100 20 80%")
        let event = try await develop(runner())

        XCTAssertEqual(event.event, "stage_failed")
        let reason = event.reason ?? ""
        XCTAssertTrue(
            reason.contains("coverage 80.0% is below the baseline 90.0% (epsilon 0.1) of acme/orch"), reason)
        let task = try await task()
        XCTAssertEqual(task.state.stage, .development)
        let measured = try await coverage.measurements(workItem: workItem)
        XCTAssertEqual(measured.map(\.percent), [80])
        XCTAssertEqual(measured.first?.passed, false)
        XCTAssertEqual(measured.first?.headSHA, task.headSHA, "the head it measured")
        // The retry reads the numbers as feedback.
        let retry = try await claim("development")
        XCTAssertTrue(try RunStageJob.payload(of: retry.job).feedback?.contains("baseline 90.0%") == true)
    }

    func testAPassRaisesTheBaselineOnlyWhenTheTaskMerges() async throws {
        _ = try await coverage.setBaseline(repo: "acme/orch", value: 70)
        measure(printing: "TOTAL 100 15 85%")
        let runner = runner()
        let event = try await develop(runner)

        XCTAssertEqual(event.event, "stage_passed")
        XCTAssertTrue(event.reason?.contains("coverage 85.0% (baseline 70.0%)") == true, event.reason ?? "")
        var baseline = try await coverage.baseline(repo: "acme/orch")
        XCTAssertEqual(baseline?.baseline, 70, "a development pass does not move the baseline")

        try await step("review", runner)
        let reviewed = try await task()
        let head = try XCTUnwrap(reviewed.headSHA)
        gitea.state.withLock { $0.ci[head] = .success }
        try await step("merge", runner)

        baseline = try await coverage.baseline(repo: "acme/orch")
        XCTAssertEqual(baseline?.baseline, 85)
        XCTAssertEqual(baseline?.commitSHA, InMemoryGitea.mergeCommit)
        XCTAssertEqual(baseline?.workItem, workItem)
        XCTAssertEqual(baseline?.setBy, .merge)
    }

    func testALocalMergeRaisesTheBaselineToo() async throws {
        measure(printing: "<coverage version=\"7\" line-rate=\"0.6125\" branch-rate=\"0\">")
        let runner = runner(withGitea: false)
        try await walkToMerge(runner)
        try await step("merge", runner)

        let baseline = try await coverage.baseline(repo: "acme/orch")
        XCTAssertEqual(baseline?.baseline, 61.25)
        XCTAssertEqual(baseline?.commitSHA, String(repeating: "d", count: 40))
    }

    func testOutputWithoutAPercentageFailsSayingSo() async throws {
        measure(printing: "coverage: no data collected")
        let event = try await develop(runner())

        XCTAssertEqual(event.event, "stage_failed")
        let reason = event.reason ?? ""
        XCTAssertTrue(reason.contains("printed no coverage percentage"), reason)
        XCTAssertTrue(reason.contains("no data collected"), "with the output's tail: \(reason)")
        let measurements = try await coverage.measurements(workItem: workItem)
        XCTAssertEqual(measurements.count, 0)
    }

    func testTheKillSwitchSkipsTheCoverageCommand() async throws {
        _ = try await coverage.setBaseline(repo: "acme/orch", value: 90)
        measure(printing: "TOTAL 100 90 10%")
        let event = try await develop(runner(switches: GateSwitches(coverageGate: false)))

        XCTAssertEqual(event.event, "stage_passed")
        XCTAssertFalse(event.reason?.contains("coverage") == true, event.reason ?? "")
        let measurements = try await coverage.measurements(workItem: workItem)
        XCTAssertEqual(measurements.count, 0)
    }
}
