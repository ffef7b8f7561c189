import Foundation
import Logging
import Store

extension StageRunner {
    /// Answers of Gitea that a short wait may change ("merge push out of date", "try again
    /// later", a head that moved under the merge) are tried again this often in one run, then
    /// the task is held.
    static let mergeTries = 4
    /// The pause before trying such a merge again.
    static let mergeRetryDelay: Duration = .seconds(2)

    /// Merge through Gitea. The pull request is read first: merged already (a retried
    /// job) passes with its merge commit; closed or gone holds the task; its current head is
    /// recorded (only forward, ordered by the PR's `updated_at`) and is the one merged, only once
    /// its CI is green (statuses from webhooks, the combined status as a backstop) unless the repo
    /// has `ci: none`. A CI verdict that does not come within the repo's `ci_timeout` (counted by
    /// the database from the job's creation) holds the task with an alert. The merge names the
    /// head (`head_commit_id`), so a head that moved is never merged unchecked, and has Gitea
    /// delete the task branch. Each refusal is read for what it is: a conflict holds with Gitea's
    /// words, a moved head is recorded and its CI awaited, a moved base is tried again shortly.
    /// Once merged, the merge commit's CI is verified before the stage passes
    /// (`StageRunner+MergeVerification.swift`).
    func mergeThroughGitea(
        _ task: TaskRecord, repo: RepositorySettings, client: any GiteaAPI, outcome: StageOutcome, logger: Logger
    ) async throws {
        guard let number = task.prNumber else {
            try await outcome.apply(.held, reason: "\(task.workItem) reached merge without a pull request")
            return
        }
        var lastAnswer = ""
        for attempt in 1...Self.mergeTries {
            if attempt > 1 {
                logger.info("merging again", metadata: ["merge.answer": "\(lastAnswer)", "merge.try": "\(attempt)"])
            }
            guard let pull = try await client.pullRequest(repo: repo.repo, number: number) else {
                try await outcome.apply(.held, reason: "PR #\(number) not found in \(repo.repo)")
                return
            }
            if pull.merged {
                try await passMerged(pull, number: number, task: task, repo: repo, client: client, outcome: outcome)
                return
            }
            guard pull.state == "open" else {
                try await outcome.apply(.held, reason: "PR #\(number) was closed without merging")
                return
            }
            if try await sentBackForReviews(task, outcome: outcome) { return }
            guard
                let head = try await readyHead(
                    task, pull: pull, number: number, repo: repo, client: client, outcome: outcome)
            else { return }
            let message = "Merge \(Workspace.branch(workItem: task.workItem)) (\(task.workItem))"
            try await outcome.confirm()
            switch try await client.merge(repo: repo.repo, number: number, headSHA: head, message: message) {
            case .merged:
                guard let merged = try await client.pullRequest(repo: repo.repo, number: number), merged.merged else {
                    try await outcome.apply(.held, reason: "Gitea merged PR #\(number) but does not show it merged")
                    return
                }
                try await passMerged(merged, number: number, task: task, repo: repo, client: client, outcome: outcome)
                return
            case .notMergeable(let message):
                // A retried job may find it merged meanwhile: that is success, not a hold.
                if let now = try await client.pullRequest(repo: repo.repo, number: number), now.merged {
                    try await passMerged(now, number: number, task: task, repo: repo, client: client, outcome: outcome)
                } else {
                    try await outcome.apply(.held, reason: "PR #\(number) not mergeable: \(message.prefix(300))")
                }
                return
            case .conflict(let message):
                try await outcome.apply(.held, reason: "PR #\(number) cannot be merged: \(message.prefix(1000))")
                return
            case .staleHead:
                // Read again: the new head is recorded and its CI awaited before merging it.
                lastAnswer = "head out of date (sent \(head.prefix(12)))"
            case .notFound:
                // Closed meanwhile, or gone: the next read says which.
                lastAnswer = "PR #\(number) not found by the merge"
            case .baseMoved:
                lastAnswer = "merge push out of date"
                try await Task.sleep(for: Self.mergeRetryDelay)
            case .notReady:
                lastAnswer = "not in a mergeable state yet (Gitea is still checking it)"
                try await Task.sleep(for: Self.mergeRetryDelay)
            }
        }
        try await outcome.apply(
            .held,
            reason: "Gitea did not merge PR #\(number) after \(Self.mergeTries) tries; "
                + "last answer: \(lastAnswer)")
    }

    /// The PR head to merge, once its CI allows it: the head Gitea shows is recorded first (a
    /// stale read changes nothing), then the task's head is the one judged. Nil when the job
    /// ended here: the task was held (red CI, no verdict in time) or the job is postponed (thrown).
    private func readyHead(
        _ task: TaskRecord, pull: PullRequestSnapshot, number: Int, repo: RepositorySettings, client: any GiteaAPI,
        outcome: StageOutcome
    ) async throws -> String? {
        if let headSHA = pull.headSHA, let updatedAt = pull.updatedAt,
            try await !tasks.recordPullRequestRead(
                workItem: task.workItem, number: number, headSHA: headSHA, updatedAt: updatedAt)
        {
            outcome.logger.notice(
                "PR read older than the last event applied: head not recorded",
                metadata: [
                    "merge.head": "\(headSHA.prefix(12))", "merge.updated_at": "\(updatedAt)",
                ])
        }
        guard let wait = try await tasks.mergeWait(workItem: task.workItem, jobID: outcome.context.job.id),
            let head = wait.headSHA
        else {
            try await outcome.apply(.held, reason: "PR #\(number) has no head commit recorded")
            return nil
        }
        guard repo.ci == .required else { return head }
        var ci = wait.headCIState
        if ci != .success { ci = try await client.combinedStatus(repo: repo.repo, sha: head) }
        switch ci {
        case .success:
            return head
        case .failure, .error:
            try await ciFailed(task, head: head, repo: repo, client: client, outcome: outcome)
            return nil
        default:
            // Pending, or no status at all: bounded by the repo's ci_timeout.
            guard wait.waited < repo.ciTimeout else {
                let reason = "no CI result for \(head.prefix(12)) after \(Self.describe(repo.ciTimeout))"
                try await outcome.apply(.held, reason: reason)
                await alerts.raise(
                    "\(task.workItem) held at merge: \(reason) (PR #\(number) in \(repo.repo); ci_timeout)",
                    key: "ci-timeout:\(task.workItem):\(head)")
                return nil
            }
            throw JobPostponed(
                after: min(settings.ciPollInterval, repo.ciTimeout - wait.waited),
                reason: "waiting for CI on \(head.prefix(12)) of PR #\(number)")
        }
    }

    /// Passes the merge stage with the merge commit Gitea made, once its CI is verified (with the
    /// merge gate on and the repository's CI required); without a merge commit (deploy needs it)
    /// the task is held. A job retried after its replica died comes here through the PR already
    /// merged, so it verifies the same merge commit and never merges twice.
    private func passMerged(
        _ pull: PullRequestSnapshot, number: Int, task: TaskRecord, repo: RepositorySettings, client: any GiteaAPI,
        outcome: StageOutcome
    ) async throws {
        let workItem = task.workItem
        guard let mergeSHA = pull.mergeSHA else {
            try await outcome.apply(
                .held, reason: "PR #\(number) is merged but Gitea shows no merge commit (deploy needs it)")
            return
        }
        if settings.switches.applies(.mergeGate, to: repo), repo.ci == .required {
            guard
                try await verifyMergeCommit(
                    mergeSHA, task: task, number: number, repo: repo, client: client, outcome: outcome)
            else { return }
        }
        try await outcome.apply(.stagePassed, reason: "PR #\(number) merged as \(mergeSHA.prefix(12))") { connection in
            try await TaskStore.recordMerge(workItem: workItem, sha: mergeSHA, on: connection)
            try await CoverageStore.raiseBaseline(workItem: workItem, mergeSHA: mergeSHA, on: connection)
        }
    }

    /// Red CI on the pull request's head: back to development with the failed checks as its
    /// feedback while the task has CI fix rounds left (`ci_fix_rounds`), else held (with the
    /// `merge_hold` lesson). The checks come from the status webhooks, else from Gitea's API.
    private func ciFailed(
        _ task: TaskRecord, head: String, repo: RepositorySettings, client: any GiteaAPI, outcome: StageOutcome
    ) async throws {
        let rounds = try await tasks.eventCount(workItem: task.workItem, event: .ciFailed(feedback: ""))
        var checks = try await tasks.failedChecks(repo: repo.repo, sha: head)
        if checks.isEmpty {
            do {
                checks = try await client.failedChecks(repo: repo.repo, sha: head)
            } catch {
                outcome.logger.warning(
                    "could not list the failed CI checks",
                    metadata: ["merge.head": "\(head.prefix(12))", "error": "\(error)"])
            }
        }
        guard rounds < repo.ciFixRounds else {
            let names = checks.map(\.context).joined(separator: ", ")
            try await outcome.apply(
                .held,
                reason: "CI failed on the PR head \(head.prefix(12))"
                    + (names.isEmpty ? "" : " (\(names))")
                    + (repo.ciFixRounds > 0
                        ? " after \(rounds) CI fix round(s) (ci_fix_rounds \(repo.ciFixRounds))" : ""))
            return
        }
        let feedback = FailedCheck.feedback(checks, sha: head, round: rounds + 1, of: repo.ciFixRounds)
        try await outcome.apply(.ciFailed(feedback: feedback), reason: String(feedback.prefix(2000)))
    }

    /// Reviews and comments on the pull request not yet applied (kept by the webhooks in
    /// `task_feedback`): the task goes back to development with what they say, before its head is
    /// merged, for at most the review rounds a review agent gets (`maxReviewRounds`); past those it
    /// is held for an operator. True when the job ended here.
    private func sentBackForReviews(_ task: TaskRecord, outcome: StageOutcome) async throws -> Bool {
        let pending = try await tasks.pendingFeedback(workItem: task.workItem)
        guard !pending.isEmpty else { return false }
        let ids = pending.map(\.id)
        let applied: @Sendable (Connection) async throws -> Void = {
            try await TaskStore.markFeedbackApplied(ids, on: $0)
        }
        let rounds = try await tasks.eventCount(workItem: task.workItem, event: .reviewFeedback(feedback: ""))
        let limit = settings.maxReviewRounds
        guard rounds < limit else {
            try await outcome.apply(
                .held,
                reason: "the pull request's reviewers asked for changes again after \(rounds) review round(s) "
                    + "(limit \(limit)): \(pending.last?.body.prefix(300) ?? "")",
                alongside: applied)
            return true
        }
        let feedback = TaskFeedback.feedback(pending, round: rounds + 1, of: limit)
        try await outcome.apply(
            .reviewFeedback(feedback: feedback), reason: String(feedback.prefix(2000)), alongside: applied)
        return true
    }

    /// A duration as an operator writes it: `2h`, `90m`, `45s`.
    static func describe(_ duration: Duration) -> String {
        let seconds = Int(duration.seconds.rounded())
        if seconds >= 3600, seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds >= 60, seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
