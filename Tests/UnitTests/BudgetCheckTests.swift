import Store
import XCTest

/// The budget check before an agent run (issue #15 item 6), without a database.
final class BudgetCheckTests: XCTestCase {
    func testNoLimitsAlwaysGoOnWithNothingToPass() {
        XCTAssertEqual(
            BudgetCheck.decide(.init(), .init(task: 99, repoToday: 99, today: 99)),
            .within(remaining: nil, warnings: []))
    }

    func testTheTightestLimitDecidesWhatIsLeftAndEightyPercentWarns() {
        let limits = BudgetLimits(perTaskUSD: 10, perRepoDayUSD: 50, perDayUSD: 100)
        XCTAssertEqual(
            BudgetCheck.decide(limits, .init(task: 2, repoToday: 45, today: 60)),
            .within(
                remaining: 5,
                warnings: [.init(scope: "repo_day", key: "per_repo_day_usd", spent: 45, limit: 50)]))
        XCTAssertEqual(
            BudgetCheck.decide(limits, .init(task: 1, repoToday: 1, today: 1)),
            .within(remaining: 9, warnings: []))
    }

    func testAnyLimitReachedPausesAndNamesEveryOneUsedUp() {
        let limits = BudgetLimits(perTaskUSD: 10, perDayUSD: 100)
        let verdict = BudgetCheck.decide(limits, .init(task: 12.4, repoToday: 0, today: 100))
        XCTAssertEqual(
            verdict,
            .exceeded([
                .init(scope: "task", key: "per_task_usd", spent: 12.4, limit: 10),
                .init(scope: "day", key: "per_day_usd", spent: 100, limit: 100),
            ]))
        guard case .exceeded(let lines) = verdict else { return XCTFail() }
        XCTAssertEqual(lines.map(\.text), ["per_task_usd: $12.40 of $10.00", "per_day_usd: $100.00 of $100.00"])
        XCTAssertEqual(BudgetCheck.usd(0.0246), "$0.0246")
        XCTAssertEqual(BudgetCheck.usd(0), "$0.00")
    }
}
