import Foundation
import Logging
import Store

/// Agent stages (analysis, architecture, development, review): run the role's agent, keep what it
/// did, and let the gate judge it.
extension StageRunner {
    func agentStage(
        _ task: TaskRecord, repo: RepositorySettings, attempt: Int, feedback: String?, outcome: StageOutcome,
        logger: Logger
    ) async throws {
        let stage = task.state.stage
        let pushed: PushedWork
        // A retry of this job after its agent's work was pushed (a later step failed: the
        // database, Gitea while opening the PR) judges that work again instead of paying for a new run.
        if let resumed = try await resumeEarlierRun(task, repo: repo, jobID: outcome.context.job.id, logger: logger) {
            pushed = resumed
        } else {
            guard case .go(let remaining) = try await checkBudget(task, repo: repo, outcome: outcome, logger: logger)
            else { return }
            switch try await runAgentAndPush(
                task, repo: repo, feedback: feedback, budget: remaining, outcome: outcome, logger: logger)
            {
            case .pushed(let work):
                pushed = work
            case .runFailed(let reason, let runID, let lesson):
                // A timeout is a finding of its own (`stage_timeout`), whatever the gate then makes of the try.
                var recordLesson: (@Sendable (Connection) async throws -> Void)?
                if let lesson {
                    recordLesson = { connection in
                        _ = try await LessonStore.recordAuto(lesson, task: task, on: connection)
                    }
                }
                if try await ranAgainForAgentRequests(task, outcome: outcome, agentRun: runID, alongside: recordLesson)
                {
                    return
                }
                try await outcome.apply(
                    .gateFailed(reason: reason, attempt: attempt), reason: String(reason.prefix(2000)), agentRun: runID,
                    alongside: recordLesson)
                return
            }
        }
        let head = pushed.head
        let recordHead: @Sendable (Connection) async throws -> Void = { connection in
            try await TaskStore.recordPush(workItem: task.workItem, repo: repo.repo, headSHA: head, on: connection)
        }
        // A person's `/agent` written while this run went on: the stage runs again with it instead.
        if try await ranAgainForAgentRequests(task, outcome: outcome, agentRun: pushed.runID, alongside: recordHead) {
            return
        }
        let verdict = try await gate.check(
            stage, workItem: task.workItem, worktree: pushed.worktree, repo: repo, base: pushed.base)
        switch verdict {
        case .pass(let reason):
            var reason = reason
            var pullNumber: Int?
            if stage == .development, let gitea {
                let pull = try await gitea.openOrFindPullRequest(
                    repo: repo.repo, head: Workspace.branch(workItem: task.workItem), base: repo.defaultBranch,
                    title: "\(task.workItem): \(task.title)",
                    body: "Opened by the orchestrator for \(task.workItem).\n\n\(task.description.prefix(2000))")
                pullNumber = pull.number
                reason += ", PR #\(pull.number)"
            }
            let ownPull = pullNumber
            try await outcome.apply(.stagePassed, reason: reason, agentRun: pushed.runID) { connection in
                try await recordHead(connection)
                if let ownPull {
                    try await TaskStore.recordOwnPullRequest(
                        workItem: task.workItem, number: ownPull, headSHA: head, on: connection)
                }
            }
        case .fail(let reason):
            try await outcome.apply(
                .gateFailed(reason: reason, attempt: attempt), reason: String(reason.prefix(2000)),
                agentRun: pushed.runID,
                alongside: recordHead)
        case .changesRequested(let review):
            let rounds = try await tasks.eventCount(workItem: task.workItem, event: .changesRequested)
            try await outcome.apply(
                .reviewRequestedChanges(round: rounds + 1), reason: String(review.prefix(500)), agentRun: pushed.runID,
                alongside: recordHead)
        }
    }

    /// An agent run whose work is on the remote task branch, ready to be judged.
    struct PushedWork: Sendable {
        let runID: Int64
        /// The branch head the run started from: its gate judges the commits after it.
        let base: String
        let head: String
        let worktree: String
    }

    /// What running the agent came to.
    enum AgentRunResult: Sendable {
        case pushed(PushedWork)
        /// The run failed or timed out: nothing of it reached the branch (a patch of its changes
        /// is kept beside its log); the reason is the gate's feedback. `lesson` is what a detector
        /// found in it (a run killed at its timeout), recorded with the outcome.
        case runFailed(reason: String, runID: Int64, lesson: AutoLesson?)
    }

    /// The work an earlier attempt of this job committed, pushed (again, when its push had failed)
    /// and ready to be judged; nil when there is none, or when it cannot be used — the branch
    /// moved on, or the commit was made on another replica — and the agent must run again.
    private func resumeEarlierRun(
        _ task: TaskRecord, repo: RepositorySettings, jobID: Int64, logger: Logger
    ) async throws -> PushedWork? {
        guard let work = try await runs.work(jobID: jobID) else { return nil }
        let worktree = try await workspace.prepare(repo, workItem: task.workItem)
        let head = try await workspace.head(repo, workItem: task.workItem)
        let remote = try await workspace.remoteBranchHead(repo, workItem: task.workItem)
        let hasCommit = try await workspace.hasCommit(repo, work.committed)
        var logger = logger
        logger[metadataKey: "agent.run"] = "\(work.runID)"
        logger[metadataKey: "git.committed"] = "\(work.committed)"
        switch RunResumption.decide(work: work, head: head, remote: remote, hasCommit: hasCommit) {
        case .runAgent:
            return nil
        case .runAgain(let reason):
            logger.notice(
                "the work of an earlier attempt cannot be used; running the agent again",
                metadata: [
                    "git.head": "\(head)", "resume.reason": "\(reason)",
                ])
            return nil
        case .judge(let work):
            if work.pushed == nil { try await runs.recordPushed(id: work.runID, pushed: head) }
            logger.info("resuming from the work an earlier attempt of this job pushed; the agent is not run again")
            return PushedWork(runID: work.runID, base: work.base, head: head, worktree: worktree)
        case .pushAgain(let work, let expecting):
            try await workspace.reset(repo, workItem: task.workItem, to: work.committed)
            try await workspace.push(repo, workItem: task.workItem, expecting: expecting)
            try await runs.recordPushed(id: work.runID, pushed: work.committed)
            logger.info("pushed the work an earlier attempt of this job committed; the agent is not run again")
            return PushedWork(runID: work.runID, base: work.base, head: work.committed, worktree: worktree)
        }
    }

    /// Runs the stage's agent in a fresh worktree and, when it succeeded, commits what it left and
    /// pushes the branch at once — before anything else can fail — recording the commit and then
    /// the pushed head on the run, so a retry resumes from them.
    private func runAgentAndPush(
        _ task: TaskRecord, repo: RepositorySettings, feedback: String?, budget: Double?, outcome: StageOutcome,
        logger: Logger
    ) async throws -> AgentRunResult {
        let stage = task.state.stage
        let role = stage == .review ? "reviewer" : "default"
        guard let agent = settings.agents[role] ?? settings.agents["default"] else {
            throw PermanentJobFailure("no agent configured for role \(role): set agents.default in ORCH_CONFIG")
        }
        try await waitWhileBreakerIsOpen()
        let clock = ContinuousClock()
        let prepared = clock.now
        let worktree = try await workspace.prepare(repo, workItem: task.workItem)
        let base = try await workspace.head(repo, workItem: task.workItem)
        let remote = try await workspace.remoteBranchHead(repo, workItem: task.workItem)
        let workspaceTime = clock.now - prepared
        let timeout = agent.timeout ?? settings.defaultAgentTimeout
        var request = AgentLauncher.Request(
            command: agent.command, timeout: timeout,
            prompt: prompt.build(task: task, stage: stage, worktree: worktree, feedback: feedback),
            directory: worktree,
            variables: [
                "ORCH_WORK_ITEM": task.workItem, "ORCH_STAGE": stage.rawValue, "ORCH_ROLE": role,
                "ORCH_REPO": repo.repo,
                "ORCH_BRANCH": Workspace.branch(workItem: task.workItem),
                "ORCH_TASK_DIR": Workspace.taskDocs(workItem: task.workItem),
            ],
            workItem: task.workItem, jobID: outcome.context.job.id, stage: stage.rawValue, role: role,
            replicaID: outcome.context.lease.replicaID, stallTimeout: agent.effectiveStallTimeout)
        request.trailingArguments = agent.budgetArguments(remaining: budget)
        let run = try await runTheRolesRunners(request, agent: agent, logger: logger)
        if run.cancelled { throw CancellationError() }
        // A silent agent is stuck, not wrong: its stage is tried again later (with backoff, counted
        // by the breaker), not judged by the gate.
        if run.stalled, let limit = agent.effectiveStallTimeout {
            await keepFailedWork(task, repo: repo, run: run, base: base, logger: logger)
            let lesson = Self.stallLesson(run, role: role, stage: stage, limit: limit, jobID: outcome.context.job.id)
            await recordStall(lesson, task: task, run: run, logger: logger)
            try await recordTransientFailure(lesson.rootCause + " (run \(run.runID))", logger: logger)
            throw TransientAgentFailure(description: "\(lesson.rootCause) (run \(run.runID), log \(run.logPath))")
        }
        if let reason = Self.transientReason(run) {
            await keepFailedWork(task, repo: repo, run: run, base: base, logger: logger)
            try await recordTransientFailure(reason, logger: logger)
            throw TransientAgentFailure(description: reason)
        }
        // A failed run's files do not count, and never reach the branch: the next try starts from
        // the same head. The operator gets them as a patch beside the run's log.
        guard run.succeeded else {
            let patch = await keepFailedWork(task, repo: repo, run: run, base: base, logger: logger)
            let what = run.timedOut ? "the agent timed out" : "the agent exited \(run.exitCode)"
            let reason =
                "\(what) (run \(run.runID), log \(run.logPath)); its changes were not committed"
                + (patch.map { ": they are kept in \($0)" } ?? "")
            return .runFailed(
                reason: reason, runID: run.runID,
                lesson: run.timedOut
                    ? Self.timeoutLesson(run, role: role, stage: stage, timeout: timeout, jobID: outcome.context.job.id)
                    : nil)
        }

        let committing = clock.now
        try await workspace.commitAll(
            repo, workItem: task.workItem, message: "\(task.workItem) \(stage.rawValue): agent run \(run.runID)")
        let head = try await workspace.head(repo, workItem: task.workItem)
        // Recorded before the push: a retry after a failed push pushes this commit again.
        try await runs.recordCommitted(id: run.runID, base: base, committed: head)
        // The branch is replaced only if it is still where this run started: an agent that
        // rebased it is pushed, a branch someone else moved meanwhile is not overwritten.
        try await workspace.push(repo, workItem: task.workItem, expecting: remote.map { .at($0) } ?? .absent)
        try await runs.recordPushed(id: run.runID, pushed: head)
        try? await runs.recordGitTimings(
            id: run.runID, workspace: workspaceTime, after: clock.now - committing)
        return .pushed(PushedWork(runID: run.runID, base: base, head: head, worktree: worktree))
    }

    /// Saves what a failed run changed as a patch beside its log; returns the patch's path, nil
    /// when it changed nothing or the patch could not be written (logged: the run already failed).
    @discardableResult
    private func keepFailedWork(
        _ task: TaskRecord, repo: RepositorySettings, run: AgentLauncher.Outcome, base: String, logger: Logger
    ) async -> String? {
        let patch = run.logPath + ".patch"
        do {
            return try await workspace.savePatch(repo, workItem: task.workItem, since: base, to: patch) ? patch : nil
        } catch {
            logger.warning(
                "could not keep a failed run's changes", metadata: ["agent.run": "\(run.runID)", "error": "\(error)"])
            return nil
        }
    }
}
