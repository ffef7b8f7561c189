import Foundation

/// One agent run as recorded.
public struct AgentRun: Sendable {
    public let id: Int64
    public let workItem: String?
    public let stage: String?
    public let role: String
    public let replicaID: String
    public let host: String
    public let pid: Int?
    public let processStart: Int64?
    public let logPath: String?
    public let startedAt: Date
    public let endedAt: Date?
    public let exitCode: Int?
    public let timedOut: Bool
    /// Stopped because it printed nothing for its stall timeout.
    public let stalled: Bool
    public let usage: AgentUsage
    public let error: String?
    /// The agent's session id (from its result).
    public let sessionID: String?
    /// The run whose session this one resumed.
    public let resumedFrom: Int64?
    /// Why it started fresh although a session could have been resumed.
    public let resumeNote: String?
    /// What became of its result: `applied`, `superseded` (its job had lost its lease), or nil.
    public let outcome: String?

    static let columns = """
        id, work_item, stage, role, replica_id, host, pid, process_start, log_path, started_at, ended_at, exit_code, timed_out, stalled, \
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, model, result_subtype, \
        num_turns, is_error, error, outcome, session_id, resumed_from, resume_note
        """

    init(row: Row) throws {
        id = try row.decode("id")
        workItem = try row.decode("work_item")
        stage = try row.decode("stage")
        role = try row.decode("role")
        replicaID = try row.decode("replica_id")
        host = try row.decode("host")
        pid = try row.decode("pid")
        processStart = try row.decode("process_start")
        logPath = try row.decode("log_path")
        startedAt = try row.decode("started_at")
        endedAt = try row.decode("ended_at")
        exitCode = try row.decode("exit_code")
        timedOut = try row.decode("timed_out")
        stalled = try row.decode("stalled")
        usage = AgentUsage(
            inputTokens: try row.decode("input_tokens"), outputTokens: try row.decode("output_tokens"),
            cacheReadTokens: try row.decode("cache_read_tokens"),
            cacheWriteTokens: try row.decode("cache_write_tokens"),
            costUSD: try row.decode("cost_usd"), model: try row.decode("model"),
            subtype: try row.decode("result_subtype"),
            numTurns: try row.decode("num_turns"), isError: try row.decode("is_error"))
        error = try row.decode("error")
        outcome = try row.decode("outcome")
        sessionID = try row.decode("session_id")
        resumedFrom = try row.decode("resumed_from")
        resumeNote = try row.decode("resume_note")
    }
}
