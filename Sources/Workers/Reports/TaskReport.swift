import Store

/// `GET /tasks/{work_item}`: the task, its stage history, jobs, agent runs and cost per stage.
public struct TaskReport: Encodable, Sendable {
    public let task: TaskRecord
    public let history: [TaskHistoryEntry]
    public let jobs: [Job]
    public let agentRuns: [AgentRun]
    public let costByStage: [StageCost]
    /// The sum of the per-stage costs as they are shown (each to the micro-dollar).
    public let costUSD: Double

    public init(
        task: TaskRecord, history: [TaskHistoryEntry], jobs: [Job], agentRuns: [AgentRun], costByStage: [StageCost]
    ) {
        self.task = task
        self.history = history
        self.jobs = jobs
        self.agentRuns = agentRuns
        self.costByStage = costByStage
        costUSD = costByStage.reduce(0) { $0 + $1.costUSD.rounded(toPlaces: 6) }.rounded(toPlaces: 6)
    }

    /// Reads the task's figures now; nil for an unknown task.
    public static func read(workItem: String, from pool: ConnectionPool) async throws -> TaskReport? {
        let tasks = TaskStore(pool: pool)
        guard let task = try await tasks.task(workItem: workItem) else { return nil }
        let runs = AgentRunStore(pool: pool)
        return TaskReport(
            task: task, history: try await tasks.history(workItem: workItem),
            jobs: try await JobStore(pool: pool).jobs(workItem: workItem),
            agentRuns: try await runs.runs(workItem: workItem),
            costByStage: try await runs.costByStage(workItem: workItem))
    }
}
