import Foundation
import Logging
import Store

/// The `post_deploy_watch` job: after `deploy_command` succeeded on a repository with a
/// `health_url`, probes it every `post_deploy.interval` (each probe bounded by `timeout`) for
/// `window`. `failures` failed probes in a row make the deploy **degraded**: the task is held
/// (event `deploy_degraded`, lesson `degraded_deploy`), the repository frozen and an alert raised, all but the
/// alert in the transaction that completes the job behind its lease. Healthy for the whole
/// window, the deploy stage passes. Both outcomes are about the deploy visit the job watches, so
/// a late one never moves a task that left it.
///
/// **Between probes the job postpones itself** (`JobPostponed`) rather than sleeping: a watch is
/// minutes of waiting for a few milliseconds of work, and sleeping would hold one of the
/// replica's `ORCH_MAX_CONCURRENCY` slots (which agent stages need) for the whole window. A
/// postponement costs one claim per probe, spends no attempt, and leaves nothing in a replica's
/// memory: the watch's state is its `deploy_watches` row, so whichever replica claims the job
/// next — including after the one probing died and the queue rescued the job — continues the same
/// watch (same window end, counts kept). The price is that a probe can be late by up to the
/// worker's poll interval (a future `run_at` sends no wake-up).
public struct PostDeployWatch: Sendable {
    let repos: [RepositorySettings]
    /// `ORCH_POST_DEPLOY_ENABLED`: switched off mid-watch, a watch ends healthy at its next run.
    let enabled: Bool
    let tasks: TaskStore
    let watches: DeployWatchStore
    let runs: AgentRunStore
    let alerts: Alerts
    let policy: StagePolicy

    /// The reason postponed watch jobs carry between probes.
    static let postponeReason = "post-deploy watch: next probe"

    /// A watch over the configured repositories (their `post_deploy` settings); `alerts` hears
    /// about degraded deploys.
    public init(repos: [RepositorySettings], enabled: Bool, pool: ConnectionPool, alerts: Alerts = .off) {
        self.repos = repos
        self.enabled = enabled
        self.tasks = TaskStore(pool: pool)
        self.watches = DeployWatchStore(pool: pool)
        self.runs = AgentRunStore(pool: pool)
        self.alerts = alerts
        self.policy = StagePolicy()
    }

    /// The job handler. One run is one probe at most, so its timeout is the longest probe's
    /// timeout with room for the database writes around it.
    public var handler: JobHandler {
        let longest = repos.map(\.gates.postDeploy.timeout).max() ?? RepositoryGates.PostDeploy().timeout
        return JobHandler(
            kind: PostDeployWatchJob.kind, timeout: longest + .seconds(60),
            failedForGood: { job, error, canRetry, connection in
                // As for a stage job: the task never stays active without a live job.
                guard let payload = try? PostDeployWatchJob.payload(of: job) else { return }
                try await DeployWatchStore.stop(
                    workItem: payload.work_item, visit: payload.visit, reason: "the watch job failed: \(error)",
                    on: connection)
                try await tasks.stageJobFailed(
                    StageJobPayload(
                        work_item: payload.work_item, stage: TaskStage.deploy.rawValue, visit: payload.visit,
                        attempt: nil, feedback: nil),
                    error: "post-deploy watch: \(error)", canRetry: canRetry, policy: policy, on: connection)
            }
        ) { context in
            try await run(context)
        }
    }

    func run(_ context: JobContext) async throws {
        let payload = try PostDeployWatchJob.payload(of: context.job)
        var logger = context.logger
        logger[metadataKey: "task.work_item"] = "\(payload.work_item)"
        logger[metadataKey: "task.visit"] = "\(payload.visit)"
        guard let task = try await tasks.task(workItem: payload.work_item) else {
            throw PermanentJobFailure("no task \(payload.work_item)")
        }
        let visit = StageVisit(stage: .deploy, visit: payload.visit)
        guard task.state.status == .active, task.currentVisit == visit else {
            let now = "\(task.state.stage.rawValue)/\(task.state.status.rawValue) visit \(task.visit)"
            try await watches.stop(
                workItem: payload.work_item, visit: payload.visit, reason: "the task left the deploy visit: now \(now)")
            logger.info("post-deploy watch stopped: the task left the deploy visit", metadata: ["task.state": "\(now)"])
            return
        }
        guard let (watch, now) = try await watches.watch(workItem: payload.work_item, visit: payload.visit) else {
            throw PermanentJobFailure(
                "no deploy watch is recorded for \(payload.work_item) deploy visit \(payload.visit)")
        }
        guard watch.result == .watching else { return }
        let settings = repos.first { $0.repo == watch.repo }?.gates.postDeploy ?? RepositoryGates.PostDeploy()
        let outcome = StageOutcome(
            tasks: tasks, runs: runs, context: context, workItem: payload.work_item, policy: policy, about: visit,
            logger: logger)
        guard enabled else {
            let reason = "post-deploy watch switched off (ORCH_POST_DEPLOY_ENABLED=0) after \(watch.probes) probe(s)"
            try await conclude(.healthy, watch, reason: reason, outcome: outcome)
            return
        }
        var current = watch
        var decision = PostDeployDecision.next(watch, now: now, settings: settings)
        if decision == .probe {
            guard let url = URL(string: watch.healthURL) else {
                throw PermanentJobFailure("health_url \(watch.healthURL) is not a URL")
            }
            let result = await HealthProbe(timeout: settings.timeout).probe(url)
            // A probe cut short by a stop (STOP, shutdown, a lost lease) says nothing about health.
            try Task.checkCancellation()
            let recorded = try await watches.recordProbe(
                id: watch.id, failed: result.failed, status: result.status, error: result.error, fence: context.lease)
            current = recorded.watch
            logger.log(
                level: result.failed ? .warning : .debug, "post-deploy probe",
                metadata: [
                    "deploy.health_url": "\(watch.healthURL)", "deploy.probe.failed": "\(result.failed)",
                    "deploy.probe.status": "\(result.status.map(String.init) ?? "")",
                    "deploy.probe.error": "\(result.error ?? "")", "deploy.probes": "\(current.probes)",
                    "deploy.consecutive_failures": "\(current.consecutiveFailures)",
                ])
            decision = PostDeployDecision.next(current, now: recorded.now, settings: settings)
        }
        switch decision {
        case .probe:
            throw JobPostponed(after: .zero, reason: Self.postponeReason)
        case .wait(let delay):
            throw JobPostponed(after: delay, reason: Self.postponeReason)
        case .healthy:
            let reason =
                "healthy for \(StageRunner.describe(settings.window)) after deploying \(current.mergeSHA.prefix(12)): "
                + "\(current.probes) probe(s) of \(current.healthURL), \(current.failedProbes) failed"
            try await conclude(.healthy, current, reason: reason, outcome: outcome)
        case .degraded:
            let reason =
                "deploy of \(current.mergeSHA.prefix(12)) degraded: \(current.consecutiveFailures) probes of "
                + "\(current.healthURL) in a row failed (last: \(current.lastError ?? "unknown"))"
            try await conclude(.degraded, current, reason: reason, outcome: outcome)
        }
    }

    /// Applies the watch's verdict to its task and ends the watch row, in one fenced transaction.
    /// Degraded also freezes the repository there, and raises the alert once that committed.
    private func conclude(
        _ result: DeployWatch.Result, _ watch: DeployWatch, reason: String, outcome: StageOutcome
    ) async throws {
        let degraded = result == .degraded
        let event: TaskEvent = degraded ? .deployDegraded(reason: reason) : .stagePassed
        try await outcome.apply(event, reason: reason) { connection in
            try await DeployWatchStore.finish(id: watch.id, result: result, reason: reason, on: connection)
            if degraded {
                try await RepositoryGateStore.freeze(
                    repo: watch.repo, reason: reason, workItem: watch.workItem, on: connection)
            }
        }
        guard outcome.context.completion.isCompleted else {
            // The task left the visit between the check and the verdict: the watch ends without one.
            try await watches.stop(
                workItem: watch.workItem, visit: watch.visit, reason: "the task left the deploy visit")
            return
        }
        if degraded {
            await alerts.raise(
                "\(watch.workItem): \(reason). \(watch.repo) is frozen: no task starts past its first stage until "
                    + "POST /serial-gate/unfreeze?repo=\(watch.repo).",
                key: "deploy_degraded:\(watch.workItem):v\(watch.visit)")
        }
    }
}
