import Store

/// How a runner prints its result, and so how the orchestrator reads it back from the end of the
/// run's log: the cost, tokens, model, session and whether it reported an error. One file per
/// format; a new CLI's format is a type conforming to this and a line in ``all``.
public protocol AgentOutputFormat: Sendable {
    /// The name `agents.<role>.runners[].format` gives it.
    var name: String { get }
    /// The run's result from the end of its log (at most ``AgentResultParser/tailBytes``); nil
    /// when the output holds none (cost and tokens then stay unknown).
    func result(fromLogTail text: String) -> AgentUsage?
}

/// The formats a runner may name.
public enum AgentOutputFormats {
    /// By name.
    public static let all: [String: any AgentOutputFormat] = {
        let formats: [any AgentOutputFormat] = [ClaudeJSONFormat(), ClaudeStreamJSONFormat(), PlainFormat()]
        var byName: [String: any AgentOutputFormat] = [:]
        for format in formats { byName[format.name] = format }
        return byName
    }()

    /// The format of a runner that names none: Claude Code's JSON, whose reader also finds the
    /// result line of its stream-json.
    public static let standard: any AgentOutputFormat = ClaudeJSONFormat()

    /// The names, sorted, for error messages and docs.
    public static var names: [String] { all.keys.sorted() }
}
