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
/// Agent stages run the role's agent in the task's worktree with the prompt on stdin, commit what
/// it left uncommitted, push the branch (the hand-over to any replica), and check the gate:
/// pass → the next stage (or `awaiting_approval` without `auto`; the transition enqueues the next
/// job), fail → the stage again with the gate's message as feedback, up to a limit, then the task
/// fails and a lesson is recorded; review `REQUEST_CHANGES` → back to development, bounded.
/// Merge merges the branch into the default branch and pushes it (the plain-git mode; merging
/// through the Gitea API once CI is green, with the merge lease, is the next step), deploy runs
/// `deploy_command` when there is one. A job for a task that moved on meanwhile does nothing, so
/// running a job twice is harmless.
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
    let commands = CommandRunner()
    let breakers: CircuitBreakerStore
    let alerts: Alerts

    /// Creates the runner; `alerts` hears when the circuit breaker opens.
    public init(settings: Settings, pool: ConnectionPool, launcher: AgentLauncher, workspace: Workspace, alerts: Alerts = .off) {
        self.alerts = alerts
        self.settings = settings
        self.tasks = TaskStore(pool: pool)
        self.lessons = LessonStore(pool: pool)
        self.launcher = launcher
        self.workspace = workspace
        self.gate = StageGate(workspace: workspace)
        self.prompt = StagePrompt(templates: settings.promptTemplates)
        self.breakers = CircuitBreakerStore(pool: pool)
    }

    /// The job handler. Its timeout is a backstop above any agent's own.
    public var handler: JobHandler {
        JobHandler(kind: TaskStore.stageJobKind, timeout: .seconds(6 * 3600)) { context in
            try await run(context)
        }
    }

    struct Payload: Decodable {
        let work_item: String
        let stage: String
        let attempt: Int?
        let feedback: String?
    }

    func run(_ context: JobContext) async throws {
        let payload = try context.job.payload.decode(Payload.self)
        var logger = context.logger
        logger[metadataKey: "task.work_item"] = "\(payload.work_item)"
        logger[metadataKey: "task.stage"] = "\(payload.stage)"
        guard let task = try await tasks.task(workItem: payload.work_item) else {
            throw PermanentJobFailure("no task \(payload.work_item)")
        }
        guard task.state.status == .active, task.state.stage.rawValue == payload.stage else {
            logger.info("stage job is stale: the task moved on", metadata: ["task.state": "\(task.state.stage.rawValue)/\(task.state.status.rawValue)"])
            return
        }
        guard let repo = settings.repos.first(where: { $0.repo == task.repo }) else {
            throw PermanentJobFailure("repository \(task.repo ?? "(none)") of \(task.workItem) is not configured (repos[].repo)")
        }
        let attempt = payload.attempt ?? 0
        switch task.state.stage {
        case .analysis, .architecture, .development, .review:
            try await agentStage(task, repo: repo, attempt: attempt, feedback: payload.feedback, jobID: context.job.id, logger: logger)
        case .merge:
            if let gitea = settings.gitea {
                try await mergeThroughGitea(task, repo: repo, client: GiteaClient(settings: gitea), logger: logger)
            } else {
                let sha = try await workspace.mergeLocally(repo, workItem: task.workItem)
                try await tasks.recordMerge(workItem: task.workItem, sha: sha)
                try await pass(task, reason: "merged into \(repo.defaultBranch) as \(sha.prefix(12))", logger: logger)
            }
        case .deploy:
            try await deploy(task, repo: repo, attempt: attempt, logger: logger)
        case .done:
            return
        }
    }

    private func agentStage(
        _ task: TaskRecord, repo: RepositorySettings, attempt: Int, feedback: String?, jobID: Int64, logger: Logger
    ) async throws {
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
        let workspaceTime = clock.now - prepared
        let outcome = try await launcher.run(.init(
            command: agent.command, timeout: agent.timeout ?? settings.defaultAgentTimeout,
            prompt: prompt.build(task: task, stage: stage, worktree: worktree, feedback: feedback), directory: worktree,
            variables: [
                "ORCH_WORK_ITEM": task.workItem, "ORCH_STAGE": stage.rawValue, "ORCH_ROLE": role, "ORCH_REPO": repo.repo,
                "ORCH_BRANCH": Workspace.branch(workItem: task.workItem), "ORCH_TASK_DIR": Workspace.taskDocs(workItem: task.workItem),
            ],
            workItem: task.workItem, jobID: jobID, stage: stage.rawValue, role: role))
        if outcome.cancelled { throw CancellationError() }
        if let reason = Self.transientReason(outcome) {
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

        let committing = clock.now
        try await workspace.commitAll(worktree: worktree, message: "\(task.workItem) \(stage.rawValue): agent run \(outcome.runID)")
        try await workspace.push(worktree: worktree, workItem: task.workItem)
        try? await launcher.runs.recordGitTimings(id: outcome.runID, workspace: workspaceTime, after: clock.now - committing)
        let head = try await workspace.head(worktree: worktree)
        try await tasks.recordPush(workItem: task.workItem, repo: repo.repo, headSHA: head)

        // A failed agent fails the stage whatever its files say: its gate (maybe a long
        // test_command) is not run.
        let verdict: GateVerdict = outcome.succeeded
            ? try await gate.check(stage, workItem: task.workItem, worktree: worktree, repo: repo)
            : .fail(outcome.timedOut ? "the agent timed out (run \(outcome.runID))" : "the agent exited \(outcome.exitCode) (run \(outcome.runID), log \(outcome.logPath))")
        switch verdict {
        case .pass(let reason):
            var reason = reason
            if stage == .development, let gitea = settings.gitea {
                let pull = try await GiteaClient(settings: gitea).openOrFindPullRequest(
                    repo: repo.repo, head: Workspace.branch(workItem: task.workItem), base: repo.defaultBranch,
                    title: "\(task.workItem): \(task.title)", body: "Opened by the orchestrator for \(task.workItem).\n\n\(task.description.prefix(2000))")
                try await tasks.recordPullRequest(workItem: task.workItem, number: pull.number, headSHA: head, mergeSHA: nil)
                reason += ", PR #\(pull.number)"
            }
            try await pass(task, reason: reason, logger: logger)
        case .fail(let reason):
            try await fail(task, reason: reason, attempt: attempt, logger: logger)
        case .changesRequested(let review):
            let rounds = try await tasks.eventCount(workItem: task.workItem, event: .changesRequested)
            if rounds >= settings.maxReviewRounds {
                try await failFinally(task, reason: "review requested changes \(rounds + 1) times (limit \(settings.maxReviewRounds))", logger: logger)
            } else {
                try await tasks.apply(.changesRequested, workItem: task.workItem, actor: "system", reason: String(review.prefix(500)))
                logger.info("review requested changes: back to development")
            }
        }
    }

    /// Merge through Gitea (DESIGN §7): only once the PR head's CI is green (from status webhooks,
    /// else the combined status as a backstop), with `head_commit_id` so a head that moved is
    /// never merged unchecked. Red CI or an unmergeable PR holds the task for an operator.
    private func mergeThroughGitea(_ task: TaskRecord, repo: RepositorySettings, client: GiteaClient, logger: Logger) async throws {
        guard let number = task.prNumber, let head = task.headSHA else {
            throw PermanentJobFailure("\(task.workItem) reached merge without a pull request")
        }
        var ci = task.headCIState ?? ""
        if ci != "success" { ci = try await client.combinedStatus(repo: repo.repo, sha: head) }
        switch ci {
        case "success":
            break
        case "failure", "error":
            try await tasks.apply(.held, workItem: task.workItem, actor: "system", reason: "CI failed on the PR head \(head.prefix(12))")
            return
        default:
            throw JobPostponed(until: Date().addingTimeInterval(settings.ciPollInterval.seconds), reason: "waiting for CI on \(head.prefix(12)) of PR #\(number)")
        }
        let pull: (merged: Bool, mergeSHA: String?, headSHA: String?)
        switch try await client.merge(repo: repo.repo, number: number, headSHA: head, message: "Merge \(Workspace.branch(workItem: task.workItem)) (\(task.workItem))") {
        case .merged:
            pull = try await client.pullRequest(repo: repo.repo, number: number)
        case .notMergeable(let message):
            // A retried job finds the PR merged already: that is success, not a hold.
            pull = try await client.pullRequest(repo: repo.repo, number: number)
            guard pull.merged else {
                try await tasks.apply(.held, workItem: task.workItem, actor: "system", reason: "PR #\(number) not mergeable: \(message.prefix(300))")
                return
            }
        case .staleHead:
            throw GiteaAPIError(description: "PR #\(number) head moved past \(head.prefix(12)); checking again", isRetryable: true)
        }
        if let sha = pull.mergeSHA { try await tasks.recordMerge(workItem: task.workItem, sha: sha) }
        try await pass(task, reason: "PR #\(number) merged" + (pull.mergeSHA.map { " as \($0.prefix(12))" } ?? ""), logger: logger)
    }

    private func deploy(_ task: TaskRecord, repo: RepositorySettings, attempt: Int, logger: Logger) async throws {
        guard let command = repo.deployCommand else {
            try await pass(task, reason: "no deploy_command configured: skipped", logger: logger)
            try await workspace.cleanup(repo, workItem: task.workItem)
            return
        }
        let worktree = try await workspace.prepare(repo, workItem: task.workItem)
        let (exit, output) = try await commands.run(command, in: worktree, timeout: .seconds(3600), check: false)
        if exit == 0 {
            try await pass(task, reason: "deploy_command succeeded", logger: logger)
            try await workspace.cleanup(repo, workItem: task.workItem)
        } else {
            try await fail(task, reason: "deploy_command exited \(exit):\n\(output.suffix(4000))", attempt: attempt, logger: logger)
        }
    }

    private func pass(_ task: TaskRecord, reason: String, logger: Logger) async throws {
        let next: TaskRecord?
        do {
            next = try await tasks.apply(.stagePassed, workItem: task.workItem, actor: "system", reason: reason)
        } catch let refused as IllegalTransition where refused.state.status == .cancelled {
            // Cancelled while this stage ran (a merge is left to finish): the cancel stands.
            logger.notice("stage finished after the task was cancelled; the cancel stands", metadata: ["gate.reason": "\(reason)"])
            return
        }
        logger.info("stage passed", metadata: [
            "gate.reason": "\(reason)", "task.next": "\(next.map { "\($0.state.stage.rawValue)/\($0.state.status.rawValue)" } ?? "")",
        ])
    }

    private func fail(_ task: TaskRecord, reason: String, attempt: Int, logger: Logger) async throws {
        guard attempt + 1 < settings.maxGateFailures else {
            try await failFinally(task, reason: reason, logger: logger)
            return
        }
        try await tasks.apply(
            .stageFailed(final: false), workItem: task.workItem, actor: "system", reason: String(reason.prefix(2000)),
            retry: (attempt + 1, reason))
        logger.warning("gate failed; stage retried with the feedback", metadata: ["gate.reason": "\(reason.prefix(300))", "gate.attempt": "\(attempt + 1)"])
    }

    private func failFinally(_ task: TaskRecord, reason: String, logger: Logger) async throws {
        try await tasks.apply(.stageFailed(final: true), workItem: task.workItem, actor: "system", reason: String(reason.prefix(2000)))
        var lesson = Lesson(type: "gate_failure", rootCause: String(reason.prefix(4000)))
        lesson.source = "auto"
        lesson.workItem = task.workItem
        lesson.stage = task.state.stage.rawValue
        lesson.repo = task.repo
        _ = try? await lessons.record(lesson)
        logger.error("stage failed for good; task failed", metadata: ["gate.reason": "\(reason.prefix(300))"])
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
