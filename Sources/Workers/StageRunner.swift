import Foundation
import Logging
import Store

/// The agents' circuit breaker: `threshold` transient failures (any replica) within `window` open
/// it for `cooldown`, during which agent stage jobs wait instead of running.
public struct BreakerSettings: Sendable, Equatable {
    /// How the jobs it postpones start their `last_error` (`/queue` counts them by it).
    public static let postponeReason = "circuit breaker open after repeated transient agent failures"

    public var enabled: Bool
    public var threshold: Int
    public var window: Duration
    public var cooldown: Duration

    /// Creates settings; the defaults: on, 3 failures within 5 minutes, 2 minutes open.
    public init(enabled: Bool = true, threshold: Int = 3, window: Duration = .seconds(300), cooldown: Duration = .seconds(120)) {
        self.enabled = enabled
        self.threshold = threshold
        self.window = window
        self.cooldown = cooldown
    }

    /// The breaker's name in `circuit_breakers`.
    public static let name = "agents"
}

/// An agent failure worth retrying later without counting against the gate: a rate limit, an
/// overloaded API, a network error. The queue retries the job with backoff.
public struct TransientAgentFailure: Error, CustomStringConvertible {
    public let description: String
}

/// The `run_stage` job (DESIGN §7): runs one stage of one task and lets its gate decide.
///
/// Agent stages run the role's agent in the task's worktree with the prompt on stdin; when it
/// succeeded, commit what it left and push the branch at once (the hand-over to any replica), then
/// let the gate judge this run's committed work: pass → the next stage (or `awaiting_approval`
/// without `auto`; the transition enqueues the next job), fail → the stage again with the gate's
/// message as feedback, up to a limit, then the task fails and a lesson is recorded; review
/// `REQUEST_CHANGES` → back to development, bounded. Merge merges through the Gitea API once CI is
/// green (`StageRunner+GiteaMerge.swift`) or, without Gitea, with git; deploy runs `deploy_command`
/// on the merge commit when there is one. A job for a task that moved on meanwhile does nothing, so
/// running a job twice is harmless; a job that fails for good holds (or fails) its task.
public struct StageRunner: Sendable {
    /// Runner settings.
    public struct Settings: Sendable {
        public var repos: [RepositorySettings]
        /// By role: `default`, `reviewer`, …; a role without its own entry uses `default`.
        public var agents: [String: AgentCommand]
        public var defaultAgentTimeout: Duration
        /// Gate failures of one stage visit before the task fails.
        public var maxGateFailures: Int
        /// Review rounds (changes requested) before the task fails.
        public var maxReviewRounds: Int
        /// Stage instruction templates (`prompts/<stage>.md`), if any.
        public var promptTemplates: String?
        /// The circuit breaker for transient agent failures (the `resilience` subsystem).
        public var breaker: BreakerSettings
        /// The Gitea API: pull requests and merges through it. Without it the remote is a plain
        /// git repository and the merge stage merges with git.
        public var gitea: GiteaSettings?
        /// How long a merge waits before looking at the PR head's CI again (status webhooks
        /// wake it earlier).
        public var ciPollInterval: Duration

        /// Creates settings.
        public init(
            repos: [RepositorySettings], agents: [String: AgentCommand], defaultAgentTimeout: Duration = .seconds(45 * 60),
            maxGateFailures: Int = 3, maxReviewRounds: Int = 3, promptTemplates: String? = nil, breaker: BreakerSettings = .init(),
            gitea: GiteaSettings? = nil, ciPollInterval: Duration = .seconds(30)
        ) {
            self.breaker = breaker
            self.gitea = gitea
            self.ciPollInterval = ciPollInterval
            self.repos = repos
            self.agents = agents
            self.defaultAgentTimeout = defaultAgentTimeout
            self.maxGateFailures = maxGateFailures
            self.maxReviewRounds = maxReviewRounds
            self.promptTemplates = promptTemplates
        }
    }

    let settings: Settings
    let tasks: TaskStore
    let lessons: LessonStore
    let launcher: AgentLauncher
    let workspace: Workspace
    let gate: StageGate
    let prompt: StagePrompt
    /// Runs `deploy_command`, as the agents' user when one is configured (it runs merged code).
    let commands: CommandRunner
    let breakers: CircuitBreakerStore
    let alerts: Alerts
    let runs: AgentRunStore
    /// One stage of a task at a time on this replica: a job whose lease moved here while the stale
    /// run of the same task is still being stopped waits for it rather than resetting the worktree
    /// under a live agent.
    let taskLocks = KeyedLocks()

    /// Creates the runner; `alerts` hears when the circuit breaker opens.
    public init(settings: Settings, pool: ConnectionPool, launcher: AgentLauncher, workspace: Workspace, alerts: Alerts = .off) {
        self.alerts = alerts
        self.settings = settings
        self.tasks = TaskStore(pool: pool)
        self.lessons = LessonStore(pool: pool)
        self.launcher = launcher
        self.workspace = workspace
        // Gate and deploy commands run code the agent wrote: as the default agent's user, if any.
        let commands = CommandRunner(identity: settings.agents["default"]?.identity)
        self.commands = commands
        var gate = StageGate(workspace: workspace)
        gate.commands = commands
        self.gate = gate
        self.prompt = StagePrompt(templates: settings.promptTemplates)
        self.breakers = CircuitBreakerStore(pool: pool)
        self.runs = AgentRunStore(pool: pool)
    }

    var policy: StagePolicy {
        StagePolicy(maxGateFailures: settings.maxGateFailures, maxReviewRounds: settings.maxReviewRounds)
    }

    /// The job handler. Its timeout is a backstop above any agent's own.
    public var handler: JobHandler {
        JobHandler(kind: RunStageJob.kind, timeout: .seconds(6 * 3600), failedForGood: { job, error, canRetry, connection in
            // The task never stays active without a live job: it is held (or failed) with the
            // error, in the transaction that fails the job. A payload that cannot be read names no task.
            guard let payload = try? RunStageJob.payload(of: job) else { return }
            try await tasks.stageJobFailed(payload, error: error, canRetry: canRetry, policy: policy, on: connection)
        }) { context in
            try await run(context)
        }
    }

    func run(_ context: JobContext) async throws {
        let payload = try RunStageJob.payload(of: context.job)
        var logger = context.logger
        logger[metadataKey: "task.work_item"] = "\(payload.work_item)"
        logger[metadataKey: "task.stage"] = "\(payload.stage)"
        try await taskLocks.withLock(payload.work_item) {
            try await run(payload, context: context, logger: logger)
        }
    }

    private func run(_ payload: StageJobPayload, context: JobContext, logger: Logger) async throws {
        guard let task = try await tasks.task(workItem: payload.work_item) else {
            throw PermanentJobFailure("no task \(payload.work_item)")
        }
        guard task.state.status == .active, task.state.stage.rawValue == payload.stage,
              payload.visit.map({ $0 == task.visit }) ?? true
        else {
            logger.info("stage job is stale: the task moved on", metadata: [
                "task.state": "\(task.state.stage.rawValue)/\(task.state.status.rawValue)", "task.visit": "\(task.visit)",
            ])
            return
        }
        try Task.checkCancellation()
        guard let repo = settings.repos.first(where: { $0.repo == task.repo }) else {
            throw PermanentJobFailure("repository \(task.repo ?? "(none)") of \(task.workItem) is not configured (repos[].repo)")
        }
        let outcome = StageOutcome(
            tasks: tasks, runs: runs, context: context, workItem: task.workItem, policy: policy,
            about: payload.visit.map { StageVisit(stage: task.state.stage, visit: $0) }, logger: logger)
        let attempt = payload.attempt ?? 0
        switch task.state.stage {
        case .analysis, .architecture, .development, .review:
            try await agentStage(task, repo: repo, attempt: attempt, feedback: payload.feedback, outcome: outcome, logger: logger)
        case .merge:
            if let gitea = settings.gitea {
                try await mergeThroughGitea(task, repo: repo, client: GiteaClient(settings: gitea), outcome: outcome, logger: logger)
            } else {
                try await mergeLocally(task, repo: repo, outcome: outcome, logger: logger)
            }
        case .deploy:
            try await deploy(task, repo: repo, attempt: attempt, outcome: outcome, logger: logger)
        case .done:
            return
        }
    }

    private func agentStage(
        _ task: TaskRecord, repo: RepositorySettings, attempt: Int, feedback: String?, outcome: StageOutcome, logger: Logger
    ) async throws {
        let stage = task.state.stage
        let pushed: PushedWork
        // A retry of this job after its agent's work was pushed (a later step failed: the
        // database, Gitea while opening the PR) judges that work again instead of paying for a new run.
        if let resumed = try await resumeEarlierRun(task, repo: repo, jobID: outcome.context.job.id, logger: logger) {
            pushed = resumed
        } else {
            switch try await runAgentAndPush(task, repo: repo, feedback: feedback, outcome: outcome, logger: logger) {
            case .pushed(let work):
                pushed = work
            case .runFailed(let reason, let runID):
                try await outcome.apply(
                    .gateFailed(reason: reason, attempt: attempt), reason: String(reason.prefix(2000)), agentRun: runID)
                return
            }
        }
        let head = pushed.head
        let recordHead: @Sendable (Connection) async throws -> Void = { connection in
            try await TaskStore.recordPush(workItem: task.workItem, repo: repo.repo, headSHA: head, on: connection)
        }
        let verdict = try await gate.check(stage, workItem: task.workItem, worktree: pushed.worktree, repo: repo, base: pushed.base)
        switch verdict {
        case .pass(let reason):
            var reason = reason
            var pullNumber: Int?
            if stage == .development, let gitea = settings.gitea {
                let pull = try await GiteaClient(settings: gitea).openOrFindPullRequest(
                    repo: repo.repo, head: Workspace.branch(workItem: task.workItem), base: repo.defaultBranch,
                    title: "\(task.workItem): \(task.title)", body: "Opened by the orchestrator for \(task.workItem).\n\n\(task.description.prefix(2000))")
                pullNumber = pull.number
                reason += ", PR #\(pull.number)"
            }
            let ownPull = pullNumber
            try await outcome.apply(.stagePassed, reason: reason, agentRun: pushed.runID) { connection in
                try await recordHead(connection)
                if let ownPull {
                    try await TaskStore.recordOwnPullRequest(workItem: task.workItem, number: ownPull, headSHA: head, on: connection)
                }
            }
        case .fail(let reason):
            try await outcome.apply(
                .gateFailed(reason: reason, attempt: attempt), reason: String(reason.prefix(2000)), agentRun: pushed.runID,
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
        /// is kept beside its log); the reason is the gate's feedback.
        case runFailed(reason: String, runID: Int64)
    }

    /// The work an earlier attempt of this job committed, pushed (again, when its push had failed)
    /// and ready to be judged; nil when there is none, or when it cannot be used — the branch
    /// moved on, or the commit was made on another replica — and the agent must run again.
    private func resumeEarlierRun(_ task: TaskRecord, repo: RepositorySettings, jobID: Int64, logger: Logger) async throws -> PushedWork? {
        guard let work = try await runs.work(jobID: jobID) else { return nil }
        let worktree = try await workspace.prepare(repo, workItem: task.workItem)
        let head = try await workspace.head(repo, workItem: task.workItem)
        var logger = logger
        logger[metadataKey: "agent.run"] = "\(work.runID)"
        logger[metadataKey: "git.committed"] = "\(work.committed)"
        if head == work.committed {
            if work.pushed == nil { try await runs.recordPushed(id: work.runID, pushed: head) }
            logger.info("resuming from the work an earlier attempt of this job pushed; the agent is not run again")
            return PushedWork(runID: work.runID, base: work.base, head: head, worktree: worktree)
        }
        let remote = try await workspace.remoteBranchHead(repo, workItem: task.workItem)
        guard work.pushed == nil, remote == nil || remote == work.base, try await workspace.hasCommit(repo, work.committed) else {
            logger.notice("the work of an earlier attempt cannot be used (the branch moved, or it was made elsewhere); running the agent again",
                metadata: ["git.head": "\(head)"])
            return nil
        }
        try await workspace.reset(repo, workItem: task.workItem, to: work.committed)
        try await workspace.push(repo, workItem: task.workItem, expecting: remote.map { .at($0) } ?? .absent)
        try await runs.recordPushed(id: work.runID, pushed: work.committed)
        logger.info("pushed the work an earlier attempt of this job committed; the agent is not run again")
        return PushedWork(runID: work.runID, base: work.base, head: work.committed, worktree: worktree)
    }

    /// Runs the stage's agent in a fresh worktree and, when it succeeded, commits what it left and
    /// pushes the branch at once — before anything else can fail — recording the commit and then
    /// the pushed head on the run, so a retry resumes from them.
    private func runAgentAndPush(
        _ task: TaskRecord, repo: RepositorySettings, feedback: String?, outcome: StageOutcome, logger: Logger
    ) async throws -> AgentRunResult {
        let stage = task.state.stage
        let role = stage == .review ? "reviewer" : "default"
        guard let agent = settings.agents[role] ?? settings.agents["default"] else {
            throw PermanentJobFailure("no agent configured for role \(role): set agents.default in ORCH_CONFIG")
        }
        if settings.breaker.enabled {
            let breaker = try await breakers.state(name: BreakerSettings.name)
            if breaker.isOpen, let until = breaker.openUntil {
                throw JobPostponed(until: until, reason: "\(BreakerSettings.postponeReason): \(breaker.lastReason ?? "")")
            }
        }
        let clock = ContinuousClock()
        let prepared = clock.now
        let worktree = try await workspace.prepare(repo, workItem: task.workItem)
        let base = try await workspace.head(repo, workItem: task.workItem)
        let remote = try await workspace.remoteBranchHead(repo, workItem: task.workItem)
        let workspaceTime = clock.now - prepared
        let run = try await launcher.run(.init(
            command: agent.command, timeout: agent.timeout ?? settings.defaultAgentTimeout,
            prompt: prompt.build(task: task, stage: stage, worktree: worktree, feedback: feedback), directory: worktree,
            variables: [
                "ORCH_WORK_ITEM": task.workItem, "ORCH_STAGE": stage.rawValue, "ORCH_ROLE": role, "ORCH_REPO": repo.repo,
                "ORCH_BRANCH": Workspace.branch(workItem: task.workItem), "ORCH_TASK_DIR": Workspace.taskDocs(workItem: task.workItem),
            ],
            workItem: task.workItem, jobID: outcome.context.job.id, stage: stage.rawValue, role: role,
            replicaID: outcome.context.lease.replicaID))
        if run.cancelled { throw CancellationError() }
        if let reason = Self.transientReason(run) {
            await keepFailedWork(task, repo: repo, run: run, base: base, logger: logger)
            if settings.breaker.enabled {
                let breaker = try await breakers.recordFailure(
                    name: BreakerSettings.name, reason: reason, threshold: settings.breaker.threshold,
                    window: settings.breaker.window, cooldown: settings.breaker.cooldown)
                if breaker.isOpen, let until = breaker.openUntil {
                    logger.error("circuit breaker opened: agent jobs pause", metadata: ["breaker.until": "\(until)"])
                    await alerts.raise(
                        "Circuit breaker open until \(until): repeated transient agent failures; agent stages wait. Last: \(reason.prefix(300))",
                        key: "breaker:\(breaker.openedCount)")
                }
            }
            throw TransientAgentFailure(description: reason)
        }
        // A failed run's files do not count, and never reach the branch: the next try starts from
        // the same head. The operator gets them as a patch beside the run's log.
        guard run.succeeded else {
            let patch = await keepFailedWork(task, repo: repo, run: run, base: base, logger: logger)
            let what = run.timedOut ? "the agent timed out" : "the agent exited \(run.exitCode)"
            let reason = "\(what) (run \(run.runID), log \(run.logPath)); its changes were not committed"
                + (patch.map { ": they are kept in \($0)" } ?? "")
            return .runFailed(reason: reason, runID: run.runID)
        }

        let committing = clock.now
        try await workspace.commitAll(repo, workItem: task.workItem, message: "\(task.workItem) \(stage.rawValue): agent run \(run.runID)")
        let head = try await workspace.head(repo, workItem: task.workItem)
        // Recorded before the push: a retry after a failed push pushes this commit again.
        try await runs.recordCommitted(id: run.runID, base: base, committed: head)
        // The branch is replaced only if it is still where this run started: an agent that
        // rebased it is pushed, a branch someone else moved meanwhile is not overwritten.
        try await workspace.push(repo, workItem: task.workItem, expecting: remote.map { .at($0) } ?? .absent)
        try await runs.recordPushed(id: run.runID, pushed: head)
        try? await launcher.runs.recordGitTimings(id: run.runID, workspace: workspaceTime, after: clock.now - committing)
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
            logger.warning("could not keep a failed run's changes", metadata: ["agent.run": "\(run.runID)", "error": "\(error)"])
            return nil
        }
    }

    /// Merges with git into the default branch (no Gitea): a conflict holds the task with git's
    /// account of it; a merged branch is deleted from the remote once the outcome is committed.
    private func mergeLocally(_ task: TaskRecord, repo: RepositorySettings, outcome: StageOutcome, logger: Logger) async throws {
        switch try await workspace.mergeLocally(repo, workItem: task.workItem) {
        case .conflict(let message):
            try await outcome.apply(.held, reason: String(message.prefix(2000)))
        case .merged(let sha):
            try await outcome.apply(.stagePassed, reason: "merged into \(repo.defaultBranch) as \(sha.prefix(12))") { connection in
                try await TaskStore.recordMerge(workItem: task.workItem, sha: sha, on: connection)
            }
            // After the outcome: a retried merge still finds the branch to recognise as merged.
            do {
                try await workspace.deleteRemoteBranch(repo, workItem: task.workItem)
            } catch {
                logger.warning("could not delete the merged task branch", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs `deploy_command` on the merge commit (`merge_sha`, on the default branch): what was
    /// merged is what ships, never the task branch (which may lack what merged before it).
    private func deploy(_ task: TaskRecord, repo: RepositorySettings, attempt: Int, outcome: StageOutcome, logger: Logger) async throws {
        guard let command = repo.deployCommand else {
            try await outcome.apply(.stagePassed, reason: "no deploy_command configured: skipped")
            try await workspace.cleanup(repo, workItem: task.workItem)
            return
        }
        guard let mergeSHA = task.mergeSHA else {
            try await outcome.apply(
                .stageErrored(reason: "nothing to deploy: no merge commit is recorded for \(task.workItem)", canRetry: true),
                reason: "nothing to deploy: no merge commit is recorded")
            return
        }
        let worktree = try await workspace.prepare(repo, workItem: task.workItem, mergedCommit: mergeSHA)
        let (exit, output) = try await commands.run(command, in: worktree, timeout: .seconds(3600), check: false)
        if exit == 0 {
            try await outcome.apply(.stagePassed, reason: "deploy_command succeeded on \(mergeSHA.prefix(12))")
            try await workspace.cleanup(repo, workItem: task.workItem)
        } else {
            let reason = "deploy_command exited \(exit) on \(mergeSHA.prefix(12)):\n\(output.suffix(4000))"
            try await outcome.apply(.gateFailed(reason: reason, attempt: attempt), reason: String(reason.prefix(2000)))
        }
    }

    /// A rate limit, an overloaded API or a network error, from the agent's result.
    static func transientReason(_ outcome: AgentLauncher.Outcome) -> String? {
        guard !outcome.timedOut, !outcome.succeeded, let usage = outcome.usage, usage.isError == true else { return nil }
        let text = (usage.resultText ?? "").lowercased()
        let markers = ["rate limit", "rate_limit", "overloaded", " 429", " 529", "econnreset", "etimedout", "network error", "connection error"]
        guard let marker = markers.first(where: { text.contains($0) }) else { return nil }
        return "transient agent failure (\(marker.trimmingCharacters(in: .whitespaces))) in run \(outcome.runID): \(text.prefix(200))"
    }
}
