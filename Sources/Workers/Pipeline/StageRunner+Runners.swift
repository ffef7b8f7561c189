import Logging
import Store

extension StageRunner {
    /// Runs the stage's agent: the runner for this try of the stage (the role's first runner for
    /// the first try, the next for each later one, the last for every try past the list) and, when
    /// the API rate-limits or overloads it (a transient failure), the next runner at once; only
    /// when no runner is left does the transient failure reach the queue and the breaker.
    func runTheRolesRunners(
        _ request: AgentLauncher.Request, agent: AgentCommand, logger: Logger
    ) async throws -> AgentLauncher.Outcome {
        var tries = 0
        if let workItem = request.workItem, let stage = request.stage, agent.runners.count > 1 {
            tries = try await runs.tries(workItem: workItem, stage: stage, role: request.role)
        }
        var (index, runner) = agent.runner(forTry: tries)
        while true {
            var chosen = request
            chosen.command = runner.command
            chosen.format = runner.format
            chosen.runner = index
            let run = try await runResumingTheStagesSession(chosen, runner: runner, logger: logger)
            guard index + 1 < agent.runners.count, let reason = Self.transientReason(run) else { return run }
            logger.notice(
                "agent runner failed transiently; trying the next runner",
                metadata: ["agent.runner": "\(index)", "agent.run": "\(run.runID)", "agent.reason": "\(reason)"])
            index += 1
            runner = agent.runners[index]
        }
    }

    /// Runs `request` (one runner), resuming the stage's last session when the runner has a
    /// `resume` template and an earlier run of this stage by the same runner (a try the gate, CI or
    /// a review sent back) reported one: the agent keeps its context and the run costs less. A
    /// resumed run that ends without a result (the agent could not find or load the session, as
    /// Claude Code says "No conversation found") is followed at once by a fresh run, whose
    /// `resume_note` says why.
    func runResumingTheStagesSession(
        _ request: AgentLauncher.Request, runner: AgentRunner, logger: Logger
    ) async throws -> AgentLauncher.Outcome {
        guard runner.resume != nil, let workItem = request.workItem, let stage = request.stage,
            let previous = try await runs.lastSession(
                workItem: workItem, stage: stage, role: request.role, runner: request.runner),
            let command = runner.resuming(previous.sessionID)
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
