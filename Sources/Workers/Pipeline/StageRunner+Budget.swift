import Foundation
import Logging
import Store

extension StageRunner {
    /// What the budget check decided.
    enum BudgetGate: Sendable, Equatable {
        /// Run; `remaining` dollars are left under the tightest limit (nil: no limit applies).
        case go(remaining: Double?)
        /// A limit is used up: the task now waits for approval, and this job is done.
        case paused
    }

    /// Checks the budgets (`budgets:`) before an agent run. Within them: 80 % of a limit sends a
    /// warning once (per task, per repository and day, per day), and the run gets what is left.
    /// A limit used up: the task waits for approval in its stage with the figures (announced like
    /// every transition, on Telegram and as a Plane comment); the approval lets it run once, and
    /// the check applies again to the run after.
    func checkBudget(
        _ task: TaskRecord, repo: RepositorySettings, outcome: StageOutcome, logger: Logger
    ) async throws -> BudgetGate {
        let limits = settings.budgets
        guard !limits.isEmpty else { return .go(remaining: nil) }
        let spend = try await tasks.budgetSpend(workItem: task.workItem, repo: repo.repo)
        switch BudgetCheck.decide(limits, spend) {
        case .within(let remaining, let warnings):
            let day = Self.utcDay(Date())
            for line in warnings {
                let subject =
                    switch line.scope {
                    case "task": task.workItem
                    case "repo_day": "\(repo.repo) \(day)"
                    default: day
                    }
                guard try await tasks.claimBudgetWarning(scope: line.scope, subject: subject) else { continue }
                logger.warning(
                    "budget at 80 %", metadata: ["budget.line": "\(line.text)", "budget.subject": "\(subject)"])
                await alerts.raise(
                    "Budget at \(Int(BudgetCheck.warningShare * 100)) % for \(subject): \(line.text)",
                    key: "budget:\(line.scope):\(subject)")
            }
            return .go(remaining: remaining)
        case .exceeded(let lines):
            let history = try await tasks.history(workItem: task.workItem)
            if history.suffix(2).map(\.event) == ["budget_exceeded", "approved"] {
                logger.notice(
                    "budget used up, but approved for one run",
                    metadata: ["budget.lines": "\(lines.map(\.text).joined(separator: "; "))"])
                return .go(remaining: nil)
            }
            let reason =
                "budget used up before the \(task.state.stage.rawValue) agent ran: "
                + lines.map(\.text).joined(separator: "; ") + "; /approve lets \(task.workItem) run once more"
            try await outcome.apply(.budgetExceeded(reason: reason), reason: reason)
            return .paused
        }
    }

    /// `2026-12-06`: the UTC day budgets count in.
    static func utcDay(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}
