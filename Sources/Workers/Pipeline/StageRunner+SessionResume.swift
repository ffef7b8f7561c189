import Logging
import Store

extension StageRunner {
    /// Runs the stage's agent, resuming the stage's last session when the role has a `resume`
    /// template and an earlier run of this stage (a try the gate, CI or a review sent back)
    /// reported one: the agent keeps its context and the run costs less. A resumed run that ends
    /// without a result (the agent could not find or load the session, as Claude Code says "No
    /// conversation found") is followed at once by a fresh run, whose `resume_note` says why.
    func runResumingTheStagesSession(
        _ request: AgentLauncher.Request, agent: AgentCommand, logger: Logger
    ) async throws -> AgentLauncher.Outcome {
        guard agent.resume != nil, let workItem = request.workItem, let stage = request.stage,
            let previous = try await runs.lastSession(workItem: workItem, stage: stage, role: request.role),
            let command = agent.resuming(previous.sessionID)
        else { return try await launcher.run(request) }
        var resuming = request
        resuming.command = command
        resuming.resumedFrom = previous.runID
        logger.info(
            "resuming the stage's agent session",
            metadata: ["agent.session": "\(previous.sessionID)", "agent.resumed_from": "\(previous.runID)"])
        let resumed = try await launcher.run(resuming)
        guard Self.couldNotResume(resumed) else { return resumed }
        var fresh = request
        fresh.resumeNote =
            "session \(previous.sessionID) of run \(previous.runID) could not be resumed: run \(resumed.runID) "
            + "exited \(resumed.exitCode) without a result; started a fresh session"
        logger.notice(
            "the agent could not resume its session; starting a fresh one",
            metadata: [
                "agent.session": "\(previous.sessionID)", "agent.run": "\(resumed.runID)",
                "agent.log": "\(resumed.logPath)",
            ])
        return try await launcher.run(fresh)
    }

    /// A resumed run that failed before producing any result: nothing was done in the session,
    /// so a fresh run is the way on. (A timeout, a stall or a cancellation is not that.)
    static func couldNotResume(_ run: AgentLauncher.Outcome) -> Bool {
        !run.succeeded && !run.timedOut && !run.stalled && !run.cancelled && run.exitCode != 0
            && run.usage?.sessionID == nil && run.usage?.isError != true
    }
}
