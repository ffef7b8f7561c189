import Store

/// One agent run's cost in `GET /metrics` (`cost.recent_runs`): what it was about and what it
/// used, nothing of its process.
public struct RunCost: Encodable, Sendable {
    public let runId: Int64
    public let workItem: String?
    public let stage: String?
    public let costUSD: Double?
    public let inputTokens: Int?
    public let outputTokens: Int?

    /// The cost figures of `run`.
    public init(_ run: AgentRun) {
        runId = run.id
        workItem = run.workItem
        stage = run.stage
        costUSD = run.usage.costUSD
        inputTokens = run.usage.inputTokens
        outputTokens = run.usage.outputTokens
    }
}
