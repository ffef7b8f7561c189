import Foundation
import Store
import TestSupport
import XCTest

/// Coverage baselines: a merge raises a repository's baseline to its task's latest passing
/// measurement and never lowers it; an operator may set any value, lower too.
final class CoverageStoreTests: DatabaseTestCase {
    var coverage: CoverageStore!

    override func setUp() async throws {
        try await super.setUp()
        coverage = CoverageStore(pool: database.pool)
    }

    /// What a merge did: whether it raised acme/app's baseline, and the baseline and commit after it.
    struct Merged: Equatable {
        let raised: Bool
        let baseline: Double?
        let commit: String?
    }

    /// Raises as the merge stage's outcome does, in a transaction.
    @discardableResult
    private func merge(_ workItem: String, as sha: String) async throws -> Merged {
        let raised = try await database.pool.withTransaction { connection in
            try await CoverageStore.raiseBaseline(workItem: workItem, mergeSHA: sha, on: connection)
        }
        let baseline = try await coverage.baseline(repo: "acme/app")
        return Merged(raised: raised, baseline: baseline?.baseline, commit: baseline?.commitSHA)
    }

    /// Records a development gate's measurement of acme/app.
    private func measure(_ workItem: String, _ percent: Double, passed: Bool = true) async throws {
        try await coverage.record(
            workItem: workItem, repo: "acme/app", percent: percent, headSHA: "head-\(percent)", passed: passed)
    }

    func testAMergeRaisesTheBaselineOnlyUpward() async throws {
        try await measure("ORCH-1", 80)
        var merged = try await merge("ORCH-1", as: "m1")
        XCTAssertEqual(merged, Merged(raised: true, baseline: 80, commit: "m1"))
        let baseline = try await coverage.baseline(repo: "acme/app")
        XCTAssertEqual(baseline?.workItem, "ORCH-1")
        XCTAssertEqual(baseline?.setBy, .merge)

        // A lower measurement that passed within epsilon does not lower it.
        try await measure("ORCH-2", 79.95)
        merged = try await merge("ORCH-2", as: "m2")
        XCTAssertEqual(merged, Merged(raised: false, baseline: 80, commit: "m1"))

        // The task's latest passing measurement counts, not a failed one after it nor an older one.
        try await measure("ORCH-3", 95)
        try await measure("ORCH-3", 85)
        try await measure("ORCH-3", 99, passed: false)
        merged = try await merge("ORCH-3", as: "m3")
        XCTAssertEqual(merged, Merged(raised: true, baseline: 85, commit: "m3"))
        // A retried merge changes nothing.
        merged = try await merge("ORCH-3", as: "m3")
        XCTAssertEqual(merged, Merged(raised: false, baseline: 85, commit: "m3"))

        // A task never measured (no coverage_command) leaves every baseline alone.
        merged = try await merge("ORCH-4", as: "m4")
        XCTAssertEqual(merged, Merged(raised: false, baseline: 85, commit: "m3"))
        let all = try await coverage.baselines()
        XCTAssertEqual(all.map(\.repo), ["acme/app"])
        let measured = try await coverage.measurements(workItem: "ORCH-3")
        XCTAssertEqual(measured.map(\.percent), [95, 85, 99])
        XCTAssertEqual(measured.map(\.passed), [true, true, false])
        XCTAssertEqual(measured.last?.headSHA, "head-99.0")
    }

    func testAnOperatorMayLowerTheBaselineAndAMergeRaisesItAgain() async throws {
        try await measure("ORCH-1", 90)
        try await merge("ORCH-1", as: "m1")

        let lowered = try await coverage.setBaseline(repo: "acme/app", value: 70.5)
        XCTAssertEqual(lowered.baseline, 70.5)
        XCTAssertEqual(lowered.setBy, .operator)
        XCTAssertNil(lowered.commitSHA, "no commit measured an operator's value")
        XCTAssertNil(lowered.workItem)
        let stored = try await coverage.baseline(repo: "acme/app")
        XCTAssertEqual(stored, lowered)

        try await measure("ORCH-2", 75)
        let merged = try await merge("ORCH-2", as: "m2")
        XCTAssertEqual(merged, Merged(raised: true, baseline: 75, commit: "m2"))
        let raised = try await coverage.baseline(repo: "acme/app")
        XCTAssertEqual(raised?.setBy, .merge)

        // A repository never measured can be given a baseline too.
        let seeded = try await coverage.setBaseline(repo: "acme/other", value: 0)
        XCTAssertEqual(seeded.baseline, 0)
        let repos = try await coverage.baselines().map(\.repo)
        XCTAssertEqual(repos, ["acme/app", "acme/other"])
    }
}
