import Store

/// `GET /tasks/{work_item}`: the task, its stage history, jobs, agent runs, cost per stage and its
/// spend against the budgets.
public struct TaskReport: Encodable, Sendable {
    /// The task's spend against `budgets:` (the per-task limit, and its repository's and all work's
    /// today).
    public struct Budget: Encodable, Sendable {
        let perTaskUsd: Double?
        let spentUsd: Double
        let remainingUsd: Double?
        let perRepoDayUsd: Double?
        let repoSpentTodayUsd: Double
        let perDayUsd: Double?
        let spentTodayUsd: Double
    }

    public let task: TaskRecord
    public let history: [TaskHistoryEntry]
    public let jobs: [Job]
    public let agentRuns: [AgentRun]
    public let costByStage: [StageCost]
    /// The sum of the per-stage costs as they are shown (each to the micro-dollar).
    public let costUSD: Double
    public let budget: Budget?

    public init(
        task: TaskRecord, history: [TaskHistoryEntry], jobs: [Job], agentRuns: [AgentRun], costByStage: [StageCost],
        budget: Budget? = nil
    ) {
        self.budget = budget
        self.task = task
        self.history = history
        self.jobs = jobs
        self.agentRuns = agentRuns
        self.costByStage = costByStage
        costUSD = costByStage.reduce(0) { $0 + $1.costUSD.rounded(toPlaces: 6) }.rounded(toPlaces: 6)
    }

    /// Reads the task's figures now; nil for an unknown task.
    public static func read(
        workItem: String, from pool: ConnectionPool, budgets: BudgetLimits = .init()
    ) async throws -> TaskReport? {
        let tasks = TaskStore(pool: pool)
        guard let task = try await tasks.task(workItem: workItem) else { return nil }
        let runs = AgentRunStore(pool: pool)
        let spend = try await tasks.budgetSpend(workItem: workItem, repo: task.repo ?? "")
        let budget = Budget(
            perTaskUsd: budgets.perTaskUSD, spentUsd: spend.task,
            remainingUsd: budgets.perTaskUSD.map { max(0, $0 - spend.task) }, perRepoDayUsd: budgets.perRepoDayUSD,
            repoSpentTodayUsd: spend.repoToday, perDayUsd: budgets.perDayUSD, spentTodayUsd: spend.today)
        return TaskReport(
            task: task, history: try await tasks.history(workItem: workItem),
            jobs: try await JobStore(pool: pool).jobs(workItem: workItem),
            agentRuns: try await runs.runs(workItem: workItem),
            costByStage: try await runs.costByStage(workItem: workItem), budget: budget)
    }
}
