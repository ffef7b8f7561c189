extension AgentRun: Encodable {
    enum CodingKeys: String, CodingKey {
        case id, stage, role
        case replicaID = "replica"
        case pid, startedAt, endedAt, exitCode, timedOut, stalled, costUSD, inputTokens, outputTokens, model, logPath,
            error
        case sessionID = "session_id"
        case resumedFrom, resumeNote
    }

    /// A run in a task's answer: its process, how it ended and what it cost (the usage figures at
    /// the top level; cache tokens and bookkeeping columns stay out).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(stage, forKey: .stage)
        try container.encode(role, forKey: .role)
        try container.encode(replicaID, forKey: .replicaID)
        try container.encodeIfPresent(pid, forKey: .pid)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encodeIfPresent(endedAt, forKey: .endedAt)
        try container.encodeIfPresent(exitCode, forKey: .exitCode)
        try container.encode(timedOut, forKey: .timedOut)
        try container.encode(stalled, forKey: .stalled)
        try container.encodeIfPresent(usage.costUSD, forKey: .costUSD)
        try container.encodeIfPresent(usage.inputTokens, forKey: .inputTokens)
        try container.encodeIfPresent(usage.outputTokens, forKey: .outputTokens)
        try container.encodeIfPresent(usage.model, forKey: .model)
        try container.encodeIfPresent(logPath, forKey: .logPath)
        try container.encodeIfPresent(error, forKey: .error)
        try container.encodeIfPresent(sessionID, forKey: .sessionID)
        // Which run's session this one resumed (`resumed_from`), or why it started fresh.
        try container.encodeIfPresent(resumedFrom, forKey: .resumedFrom)
        try container.encodeIfPresent(resumeNote, forKey: .resumeNote)
    }
}
