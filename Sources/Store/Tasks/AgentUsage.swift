import Foundation

/// Token and cost figures an agent reported (Claude Code's JSON result), all optional.
public struct AgentUsage: Sendable, Equatable {
    public var inputTokens: Int?
    public var outputTokens: Int?
    public var cacheReadTokens: Int?
    public var cacheWriteTokens: Int?
    public var costUSD: Double?
    public var model: String?
    public var subtype: String?
    public var numTurns: Int?
    public var isError: Bool?
    /// The agent's final text (`result`), for the stage's output.
    public var resultText: String?
    /// The agent's session (`session_id`), which a later run of the stage may resume.
    public var sessionID: String?

    /// Creates figures.
    public init(
        inputTokens: Int? = nil, outputTokens: Int? = nil, cacheReadTokens: Int? = nil, cacheWriteTokens: Int? = nil,
        costUSD: Double? = nil, model: String? = nil, subtype: String? = nil, numTurns: Int? = nil,
        isError: Bool? = nil,
        resultText: String? = nil, sessionID: String? = nil
    ) {
        self.sessionID = sessionID
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.costUSD = costUSD
        self.model = model
        self.subtype = subtype
        self.numTurns = numTurns
        self.isError = isError
        self.resultText = resultText
    }
}
