import Logging
import Store

/// How one `run_stage` job reports its outcome: the task transition, whatever it must write
/// alongside (the branch head, the PR, the merge commit), the next job, any lesson and the job's
/// own completion commit in one transaction that first re-checks the job's fence. A job that lost
/// its lease (rescued, cancelled, handed to another replica) applies nothing; an outcome about a
/// stage visit the task has left applies nothing either.
struct StageOutcome: Sendable {
    let tasks: TaskStore
    let runs: AgentRunStore
    let context: JobContext
    let workItem: String
    let policy: StagePolicy
    /// The stage visit the job was enqueued for (nil for jobs from before visits were recorded).
    let about: StageVisit?
    let logger: Logger
    /// Checked before anything is applied: a merge's confirms that its merge lease is still held
    /// (``MergeLease/confirm()``), so a merge whose lease was lost changes nothing.
    var precondition: (@Sendable () async throws -> Void)? = nil

    /// Runs the precondition (nothing without one): before a merge call, and before every outcome.
    func confirm() async throws {
        try await precondition?()
    }

    /// Applies `event` fenced by the job's lease. `agentRun` is the run whose result this is: it
    /// is marked `applied`, or `superseded` when the fence was lost.
    func apply(
        _ event: TaskEvent, reason: String, agentRun: Int64? = nil,
        alongside: (@Sendable (Connection) async throws -> Void)? = nil
    ) async throws {
        try await confirm()
        let applied = try await fenced(event.name, reason: reason, agentRun: agentRun) {
            try await tasks.apply(
                event, workItem: workItem, actor: "system", reason: reason, about: about, policy: policy,
                fence: context.lease
            ) { connection in
                try await alongside?(connection)
                if let agentRun {
                    try await AgentRunStore.markOutcome(id: agentRun, outcome: "applied", on: connection)
                }
            }
        }
        guard let next = applied else { return }
        logger.info(
            "stage outcome applied",
            metadata: [
                "task.event": "\(event.name)", "gate.reason": "\(reason.prefix(300))",
                "task.next":
                    "\(next.map { "\($0.state.stage.rawValue)/\($0.state.status.rawValue) visit \($0.visit)" } ?? "")",
            ])
    }

    /// Hands the deploy stage over to its post-deploy watch instead of passing it: the watch row
    /// and its job are created in the transaction that completes this job behind its fence
    /// (``DeployWatchStore/start(_:about:fence:)``). The task stays active in deploy; the watch's
    /// own outcome moves it. `current` is the visit a job from before visits were recorded is about.
    func handOver(
        _ handover: DeployWatchStore.Handover, to watches: DeployWatchStore, current: StageVisit, reason: String
    ) async throws {
        try await confirm()
        let visit = about ?? current
        let started = try await fenced("post_deploy_watch", reason: reason, agentRun: nil) {
            try await watches.start(handover, about: visit, fence: context.lease)
        }
        guard let watch = started ?? nil else { return }
        logger.info(
            "deploy handed over to the post-deploy watch",
            metadata: [
                "deploy.watch": "\(watch.id)", "deploy.health_url": "\(handover.healthURL)",
                "deploy.merge_sha": "\(handover.mergeSHA)", "gate.reason": "\(reason.prefix(300))",
            ])
    }

    /// Runs `commit` (a transaction that completes the job behind its fence) and marks the job
    /// completed when it committed; nil when it applied nothing because the task left the stage
    /// visit or was cancelled (the worker then completes the job as usual). A lost fence is
    /// logged and rethrown.
    private func fenced<T: Sendable>(
        _ what: String, reason: String, agentRun: Int64?, _ commit: () async throws -> T
    ) async throws -> T? {
        let result: T
        do {
            result = try await commit()
        } catch let lost as JobFenceLost {
            if let agentRun { try? await runs.markSuperseded(id: agentRun) }
            logger.warning(
                "stage outcome not applied: the job is no longer held by this replica",
                metadata: [
                    "task.event": "\(what)", "job.fence": "\(lost.lease)",
                    "agent.run": "\(agentRun.map(String.init) ?? "")",
                ])
            throw lost
        } catch let stale as StaleOutcome {
            logger.notice(
                "stage outcome not applied: the task left this stage visit",
                metadata: [
                    "task.event": "\(what)", "task.reason": "\(stale)",
                ])
            return nil
        } catch let refused as IllegalTransition where refused.state.status == .cancelled {
            // Cancelled while this stage ran (a merge is left to finish): the cancel stands.
            logger.notice(
                "stage finished after the task was cancelled; the cancel stands", metadata: ["gate.reason": "\(reason)"]
            )
            return nil
        }
        // The job row was completed in that transaction: the worker must not complete it again.
        context.completion.markCompleted()
        return result
    }
}
