/// What the stage runner asks of an agent: run it once for a stage and say how it went (the run
/// recorded in `agent_runs`, its log written). A seam, so the runner's decisions can be tested
/// with a stand-in; ``AgentLauncher`` is the real one (a child process in the task's worktree).
protocol AgentRunning: Sendable {
    func run(_ request: AgentLauncher.Request) async throws -> AgentLauncher.Outcome
}

extension AgentLauncher: AgentRunning {}
