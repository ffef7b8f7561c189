import Foundation
import Logging
import Store

extension StageRunner {
    /// The longest pause between two looks at the merge commit's CI state as status webhooks
    /// recorded it (a database read); Gitea's combined status is asked every `ci_poll_interval`.
    static let mergeVerifyLook: Duration = .seconds(2)

    /// Waits, under the merge lease, for the merge commit's combined CI on the default branch to
    /// turn `success` within the repository's `merge_verify.window`, so deploy only ever runs a
    /// verified merge commit and the next merge starts from a green branch. Status webhooks keep
    /// `merge_ci_state` current; Gitea's combined status is the backstop (nil, no status yet, is
    /// never success). Red, or no success in the window: the task is held and the repository
    /// frozen in one transaction, and an alert raised. The window counts from the first look at
    /// this merge commit, by the database clock, so a job retried after its replica died goes on
    /// with it. Returns whether the merge commit is verified (false: the task was held).
    func verifyMergeCommit(
        _ sha: String, task: TaskRecord, number: Int, repo: RepositorySettings, client: any GiteaAPI,
        outcome: StageOutcome
    ) async throws -> Bool {
        let window = repo.gates.mergeVerifyWindow
        let look = min(settings.ciPollInterval, Self.mergeVerifyLook)
        var askGiteaAt = ContinuousClock.now
        try await tasks.beginMergeVerification(workItem: task.workItem, sha: sha)
        while true {
            guard let check = try await tasks.mergeVerification(workItem: task.workItem) else {
                throw PermanentJobFailure("no task \(task.workItem)")
            }
            var state = check.ciState
            if state != .success, state?.isFailure != true, ContinuousClock.now >= askGiteaAt {
                askGiteaAt = .now.advanced(by: settings.ciPollInterval)
                do {
                    state = try await client.combinedStatus(repo: repo.repo, sha: sha) ?? state
                } catch let error as CancellationError {
                    throw error
                } catch {
                    // Gitea away for a moment: the webhooks and the next ask may still tell; the window bounds it.
                    outcome.logger.warning(
                        "could not read the merge commit's combined status",
                        metadata: ["merge.sha": "\(sha.prefix(12))", "error": "\(error)"])
                }
            }
            if state == .success {
                outcome.logger.info("merge commit verified", metadata: ["merge.sha": "\(sha.prefix(12))"])
                return true
            }
            if state?.isFailure == true {
                try await holdAndFreeze(
                    task, repo: repo, sha: sha,
                    reason: "CI failed on merge commit \(sha.prefix(12)) of PR #\(number) on \(repo.defaultBranch)",
                    outcome: outcome)
                return false
            }
            guard check.elapsed < window else {
                try await holdAndFreeze(
                    task, repo: repo, sha: sha,
                    reason: "no CI success on merge commit \(sha.prefix(12)) of PR #\(number) on "
                        + "\(repo.defaultBranch) within \(Self.describe(window)) (merge_verify.window)",
                    outcome: outcome)
                return false
            }
            try await Task.sleep(for: min(look, window - check.elapsed))
        }
    }

    /// Holds the task and freezes its repository in one transaction (no task of it starts past
    /// its first stage until an operator unfreezes it), then alerts.
    private func holdAndFreeze(
        _ task: TaskRecord, repo: RepositorySettings, sha: String, reason: String, outcome: StageOutcome
    ) async throws {
        let workItem = task.workItem
        try await outcome.apply(.held, reason: reason) { connection in
            try await RepositoryGateStore.freeze(repo: repo.repo, reason: reason, workItem: workItem, on: connection)
            try await TaskStore.endMergeVerification(workItem: workItem, on: connection)
        }
        guard outcome.context.completion.isCompleted else { return }
        await alerts.raise(
            "\(workItem) held at merge and \(repo.repo) frozen: \(reason)", key: "merge-verify:\(workItem):\(sha)")
    }
}
