import Foundation
import Logging
import Store

/// The merge stage without Gitea: the remote is a plain git repository.
extension StageRunner {
    /// Merges with git into the default branch (no Gitea): a conflict holds the task with git's
    /// account of it; a merged branch is deleted from the remote once the outcome is committed.
    func mergeLocally(_ task: TaskRecord, repo: RepositorySettings, outcome: StageOutcome, logger: Logger) async throws
    {
        try await outcome.confirm()
        switch try await workspace.mergeLocally(repo, workItem: task.workItem) {
        case .conflict(let message):
            try await outcome.apply(.held, reason: String(message.prefix(2000)))
        case .merged(let sha):
            try await outcome.apply(.stagePassed, reason: "merged into \(repo.defaultBranch) as \(sha.prefix(12))") {
                connection in
                try await TaskStore.recordMerge(workItem: task.workItem, sha: sha, on: connection)
                try await CoverageStore.raiseBaseline(workItem: task.workItem, mergeSHA: sha, on: connection)
            }
            // After the outcome: a retried merge still finds the branch to recognise as merged.
            do {
                try await workspace.deleteRemoteBranch(repo, workItem: task.workItem)
            } catch {
                logger.warning("could not delete the merged task branch", metadata: ["error": "\(error)"])
            }
        }
    }
}
