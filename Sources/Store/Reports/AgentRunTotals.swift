/// Aggregate cost of every agent run: runs, USD (known costs only) and tokens.
public struct AgentRunTotals: Sendable, Equatable {
    public let runs: Int
    public let costUSD: Double
    public let input: Int
    public let output: Int
    public let cacheRead: Int
    public let cacheWrite: Int

    /// Creates totals.
    public init(runs: Int, costUSD: Double, input: Int, output: Int, cacheRead: Int, cacheWrite: Int) {
        self.runs = runs
        self.costUSD = costUSD
        self.input = input
        self.output = output
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
    }
}
