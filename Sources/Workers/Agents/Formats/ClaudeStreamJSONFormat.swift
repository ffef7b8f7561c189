import Store

/// Claude Code's `--output-format stream-json --verbose`: one JSON event per line, the last of
/// which is the `{"type":"result",…}` object the JSON format prints alone.
public struct ClaudeStreamJSONFormat: AgentOutputFormat {
    public let name = "claude-stream-json"

    public func result(fromLogTail text: String) -> AgentUsage? { AgentResultParser.parse(text) }
}
