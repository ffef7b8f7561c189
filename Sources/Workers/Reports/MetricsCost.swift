import Store

/// The `cost` part of `GET /metrics`: runs, known USD, tokens, and the latest runs' costs.
public struct MetricsCost: Encodable, Sendable {
    public let totals: AgentRunTotals
    /// The most recent runs (up to 50), each with its cost (absent = unknown).
    public let recentRuns: [RunCost]

    public init(totals: AgentRunTotals, recentRuns: [RunCost]) {
        self.totals = totals
        self.recentRuns = recentRuns
    }

    enum CodingKeys: String, CodingKey {
        case runs, totalUSD, tokens, recentRuns
    }

    enum TokenKeys: String, CodingKey {
        case input, output, cacheRead, cacheWrite
    }

    /// USD to the micro-dollar; tokens grouped under `tokens`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(totals.runs, forKey: .runs)
        try container.encode(totals.costUSD.rounded(toPlaces: 6), forKey: .totalUSD)
        var tokens = container.nestedContainer(keyedBy: TokenKeys.self, forKey: .tokens)
        try tokens.encode(totals.input, forKey: .input)
        try tokens.encode(totals.output, forKey: .output)
        try tokens.encode(totals.cacheRead, forKey: .cacheRead)
        try tokens.encode(totals.cacheWrite, forKey: .cacheWrite)
        try container.encode(recentRuns, forKey: .recentRuns)
    }
}
