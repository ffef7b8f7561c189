import Foundation
import Store

/// `GET /metrics`: the versioned JSON envelope of stages, queue, live agents and cost.
public struct MetricsReport: Encodable, Sendable {
    /// Bumped when a field changes meaning or disappears (adding one does not).
    public static let schemaVersion = 1

    public let schemaVersion = MetricsReport.schemaVersion
    public let generatedAt: Date
    /// The kernel's clock ticks per second, to read the agents' `cpu_ticks`.
    public let clkTck: Int
    /// Per stage, in pipeline order.
    public let stages: [MetricsStore.StageFigures]
    public let queue: MetricsQueue
    /// Live agent runs.
    public let agents: [LiveAgent]
    public let cost: MetricsCost

    public init(
        generatedAt: Date, clkTck: Int, stages: [MetricsStore.StageFigures], queue: MetricsQueue, agents: [LiveAgent],
        cost: MetricsCost
    ) {
        self.generatedAt = generatedAt
        self.clkTck = clkTck
        self.stages = stages
        self.queue = queue
        self.agents = agents
        self.cost = cost
    }

    /// Reads every figure now; CPU times of agents on this host come from `/proc`.
    public static func read(from pool: ConnectionPool, maxConcurrency: Int) async throws -> MetricsReport {
        let figures = MetricsStore(pool: pool)
        let runs = AgentRunStore(pool: pool)
        let host = ProcessInfo.processInfo.hostName
        let now = Date()
        return MetricsReport(
            generatedAt: now, clkTck: sysconf(Int32(_SC_CLK_TCK)), stages: try await figures.stages(),
            queue: MetricsQueue(figures: try await figures.queue(), maxConcurrency: maxConcurrency),
            agents: try await runs.live().map { LiveAgent(run: $0, localHost: host, now: now) },
            cost: MetricsCost(
                totals: try await runs.totals(), recentRuns: try await runs.recent(limit: 50).map(RunCost.init)))
    }
}
