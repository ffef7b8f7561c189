import Store

/// A CLI that prints text only (Codex's final message, Gemini's text): no result is read, so cost
/// and tokens stay unknown and the exit status alone says whether the run succeeded.
public struct PlainFormat: AgentOutputFormat {
    public let name = "plain"

    public func result(fromLogTail text: String) -> AgentUsage? { nil }
}
