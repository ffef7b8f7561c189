import Foundation

/// Spending limits in USD (`budgets:` in `ORCH_CONFIG`): per task, per repository per UTC day and
/// for all work per UTC day; nil: no limit of that kind.
public struct BudgetLimits: Sendable, Equatable {
    public var perTaskUSD: Double?
    public var perRepoDayUSD: Double?
    public var perDayUSD: Double?

    public init(perTaskUSD: Double? = nil, perRepoDayUSD: Double? = nil, perDayUSD: Double? = nil) {
        self.perTaskUSD = perTaskUSD
        self.perRepoDayUSD = perRepoDayUSD
        self.perDayUSD = perDayUSD
    }

    /// No limit at all: nothing to check.
    public var isEmpty: Bool { perTaskUSD == nil && perRepoDayUSD == nil && perDayUSD == nil }
}

/// What has been spent (agent runs' `cost_usd`; a run of unknown cost counts 0).
public struct BudgetSpend: Sendable, Equatable {
    public var task: Double
    public var repoToday: Double
    public var today: Double

    public init(task: Double, repoToday: Double, today: Double) {
        self.task = task
        self.repoToday = repoToday
        self.today = today
    }
}

/// The budget check before an agent run: pure, so it is tested without a database.
public enum BudgetCheck {
    /// One limit's standing.
    public struct Line: Sendable, Equatable {
        /// `task`, `repo_day` or `day` (the `budget_warnings` scope).
        public let scope: String
        /// The configuration key, e.g. `per_task_usd`.
        public let key: String
        public let spent: Double
        public let limit: Double

        public init(scope: String, key: String, spent: Double, limit: Double) {
            self.scope = scope
            self.key = key
            self.spent = spent
            self.limit = limit
        }

        /// How it reads in a pause or a warning: `per_task_usd: $12.40 of $10.00`.
        public var text: String { "\(key): \(BudgetCheck.usd(spent)) of \(BudgetCheck.usd(limit))" }
    }

    /// The verdict.
    public enum Verdict: Sendable, Equatable {
        /// Go on; `remaining` is the least left under any limit (nil: no limit), `warnings` the
        /// limits at 80 % or more.
        case within(remaining: Double?, warnings: [Line])
        /// A limit is used up: the task waits for approval with these figures.
        case exceeded([Line])
    }

    /// The share of a limit past which a warning is sent.
    public static let warningShare = 0.8

    public static func decide(_ limits: BudgetLimits, _ spend: BudgetSpend) -> Verdict {
        let lines = [
            limits.perTaskUSD.map { Line(scope: "task", key: "per_task_usd", spent: spend.task, limit: $0) },
            limits.perRepoDayUSD.map {
                Line(scope: "repo_day", key: "per_repo_day_usd", spent: spend.repoToday, limit: $0)
            },
            limits.perDayUSD.map { Line(scope: "day", key: "per_day_usd", spent: spend.today, limit: $0) },
        ].compactMap { $0 }
        let over = lines.filter { $0.spent >= $0.limit }
        guard over.isEmpty else { return .exceeded(over) }
        let remaining = lines.map { $0.limit - $0.spent }.min()
        return .within(remaining: remaining, warnings: lines.filter { $0.spent >= $0.limit * warningShare })
    }

    /// Dollars with cents, or four decimals when cents would hide a difference: `$12.40`,
    /// `$0.0246`.
    public static func usd(_ value: Double) -> String {
        abs(value * 100 - (value * 100).rounded()) < 1e-6
            ? String(format: "$%.2f", value) : String(format: "$%.4f", value)
    }
}
