import Store

/// The `budget` block: the configured limits (`budgets:`), what agents spent today (UTC) in
/// total and per repository, and the tasks waiting for approval because a budget ran out.
public struct BudgetBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        struct Limits: Encodable, Sendable {
            let perTaskUsd: Double?
            let perRepoDayUsd: Double?
            let perDayUsd: Double?
        }
        struct RepoSpend: Encodable, Sendable {
            let repo: String
            let spentUsd: Double
        }
        struct Paused: Encodable, Sendable {
            let workItem: String
            let reason: String?
        }
        let enabled: Bool
        let scope: String
        let limits: Limits
        let day: String
        let spentTodayUsd: Double
        let repos: [RepoSpend]
        let paused: [Paused]
    }

    public let key = "budget"
    let limits: BudgetLimits

    public init(limits: BudgetLimits) {
        self.limits = limits
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let tasks = TaskStore(pool: pool)
        let spend = try await tasks.spendToday()
        return Body(
            enabled: !limits.isEmpty, scope: QueueReportScope.all,
            limits: .init(
                perTaskUsd: limits.perTaskUSD, perRepoDayUsd: limits.perRepoDayUSD, perDayUsd: limits.perDayUSD),
            day: try await tasks.utcDay(), spentTodayUsd: spend.map(\.usd).reduce(0, +),
            repos: spend.map { .init(repo: $0.repo, spentUsd: $0.usd) },
            paused: try await tasks.pausedForBudget().map { .init(workItem: $0.workItem, reason: $0.reason) })
    }
}
