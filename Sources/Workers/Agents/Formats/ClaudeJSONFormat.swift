import Store

/// Claude Code's `--output-format json`: one result object at the end (cost, usage, model,
/// session, `is_error`), as ``AgentResultParser`` reads it.
public struct ClaudeJSONFormat: AgentOutputFormat {
    public let name = "claude-json"

    public func result(fromLogTail text: String) -> AgentUsage? { AgentResultParser.parse(text) }
}
