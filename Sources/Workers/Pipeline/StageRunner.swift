import Foundation
import Logging
import Store

/// The `run_stage` job: runs one stage of one task and lets its gate decide.
///
/// Agent stages run the role's agent in the task's worktree with the prompt on stdin; when it
/// succeeded, commit what it left and push the branch at once (the hand-over to any replica), then
/// let the gate judge this run's committed work: pass → the next stage (or `awaiting_approval`
/// without `auto`; the transition enqueues the next job), fail → the stage again with the gate's
/// message as feedback, up to a limit, then the task fails and a lesson is recorded; review
/// `REQUEST_CHANGES` → back to development, bounded. Merge, under the repository's merge lease
/// (`StageRunner+MergeLease.swift`), merges through the Gitea API once CI is green and then
/// verifies the merge commit's CI (`StageRunner+GiteaMerge.swift`,
/// `StageRunner+MergeVerification.swift`) or, without Gitea, with git; deploy runs `deploy_command`
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
        /// The repository gates' kill switches.
        public var switches: GateSwitches
        /// Spending limits checked before each agent run (`budgets:`).
        public var budgets: BudgetLimits

        /// Creates settings.
        public init(
            repos: [RepositorySettings], agents: [String: AgentCommand],
            defaultAgentTimeout: Duration = .seconds(45 * 60),
            maxGateFailures: Int = 3, maxReviewRounds: Int = 3, promptTemplates: String? = nil,
            breaker: BreakerSettings = .init(),
            gitea: GiteaSettings? = nil, ciPollInterval: Duration = .seconds(30), switches: GateSwitches = .init(),
            budgets: BudgetLimits = .init()
        ) {
            self.budgets = budgets
            self.switches = switches
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
    let launcher: any AgentRunning
    let workspace: any TaskWorkspace
    /// Pull requests and merges; nil without Gitea (the merge stage merges with git).
    let gitea: (any GiteaAPI)?
    let gate: StageGate
    let prompt: StagePrompt
    /// Runs `deploy_command`, as the agents' user when one is configured (it runs merged code).
    let commands: CommandRunner
    let breakers: CircuitBreakerStore
    let alerts: Alerts
    let runs: AgentRunStore
    /// Where a watched deploy hands over to its post-deploy watch.
    let watches: DeployWatchStore
    /// Per repository one merge (and its verification) at a time across all replicas.
    let mergeLeases: MergeLeaseStore
    /// One stage of a task at a time on this replica: a job whose lease moved here while the stale
    /// run of the same task is still being stopped waits for it rather than resetting the worktree
    /// under a live agent.
    let taskLocks = KeyedLocks()

    /// A runner with the real agent launcher, git workspace and (when configured) Gitea client;
    /// `alerts` hears when the circuit breaker opens.
    public init(
        settings: Settings, pool: ConnectionPool, launcher: AgentLauncher, workspace: Workspace, alerts: Alerts = .off
    ) {
        self.init(
            settings: settings, pool: pool, agent: launcher, git: workspace,
            gitea: settings.gitea.map { GiteaClient(settings: $0) }, alerts: alerts)
    }

    /// A runner over any agent, git and Gitea: the seams its unit tests use.
    init(
        settings: Settings, pool: ConnectionPool, agent: any AgentRunning, git: any TaskWorkspace,
        gitea: (any GiteaAPI)?, alerts: Alerts = .off
    ) {
        self.alerts = alerts
        self.settings = settings
        self.tasks = TaskStore(pool: pool)
        self.lessons = LessonStore(pool: pool)
        self.launcher = agent
        self.workspace = git
        self.gitea = gitea
        // Gate and deploy commands run code the agent wrote: as the default agent's user, if any.
        let commands = CommandRunner(identity: settings.agents["default"]?.identity)
        self.commands = commands
        var gate = StageGate(workspace: git)
        gate.commands = commands
        gate.coverage = settings.switches.coverageGate ? CoverageStore(pool: pool) : nil
        self.gate = gate
        self.prompt = StagePrompt(templates: settings.promptTemplates)
        self.breakers = CircuitBreakerStore(pool: pool)
        self.runs = AgentRunStore(pool: pool)
        self.watches = DeployWatchStore(pool: pool)
        self.mergeLeases = MergeLeaseStore(pool: pool)
    }

    var policy: StagePolicy {
        StagePolicy(maxGateFailures: settings.maxGateFailures, maxReviewRounds: settings.maxReviewRounds)
    }

    /// The job handler. Its timeout is a backstop above any agent's own.
    public var handler: JobHandler {
        JobHandler(
            kind: RunStageJob.kind, timeout: .seconds(6 * 3600),
            failedForGood: { job, error, canRetry, connection in
                // The task never stays active without a live job: it is held (or failed) with the
                // error, in the transaction that fails the job. A payload that cannot be read names no task.
                guard let payload = try? RunStageJob.payload(of: job) else { return }
                try await tasks.stageJobFailed(
                    payload, error: error, canRetry: canRetry, policy: policy, on: connection)
            }
        ) { context in
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
            logger.info(
                "stage job is stale: the task moved on",
                metadata: [
                    "task.state": "\(task.state.stage.rawValue)/\(task.state.status.rawValue)",
                    "task.visit": "\(task.visit)",
                ])
            return
        }
        try Task.checkCancellation()
        guard let repo = settings.repos.first(where: { $0.repo == task.repo }) else {
            throw PermanentJobFailure(
                "repository \(task.repo ?? "(none)") of \(task.workItem) is not configured (repos[].repo)")
        }
        let outcome = StageOutcome(
            tasks: tasks, runs: runs, context: context, workItem: task.workItem, policy: policy,
            about: payload.visit.map { StageVisit(stage: task.state.stage, visit: $0) }, logger: logger)
        let attempt = payload.attempt ?? 0
        switch task.state.stage {
        case .analysis, .architecture, .development, .review:
            try await agentStage(
                task, repo: repo, attempt: attempt, feedback: payload.feedback, outcome: outcome, logger: logger)
        case .merge:
            try await underMergeLease(task, repo: repo, outcome: outcome) { outcome in
                if let gitea {
                    try await mergeThroughGitea(task, repo: repo, client: gitea, outcome: outcome, logger: logger)
                } else {
                    try await mergeLocally(task, repo: repo, outcome: outcome, logger: logger)
                }
            }
        case .deploy:
            try await deploy(task, repo: repo, attempt: attempt, outcome: outcome, logger: logger)
        case .done:
            return
        }
    }
}
