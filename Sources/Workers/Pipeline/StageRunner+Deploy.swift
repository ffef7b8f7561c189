import Foundation
import Logging
import Store

/// The deploy stage.
extension StageRunner {
    /// Runs `deploy_command` on the merge commit (`merge_sha`, on the default branch): what was
    /// merged is what ships, never the task branch (which may lack what merged before it). With a
    /// `health_url` and the post-deploy switch on, a successful deploy is handed over to its watch
    /// rather than passed.
    func deploy(
        _ task: TaskRecord, repo: RepositorySettings, attempt: Int, outcome: StageOutcome, logger: Logger
    ) async throws {
        guard let command = repo.deployCommand else {
            try await outcome.apply(.stagePassed, reason: "no deploy_command configured: skipped")
            try await workspace.cleanup(repo, workItem: task.workItem)
            return
        }
        guard let mergeSHA = task.mergeSHA else {
            try await outcome.apply(
                .stageErrored(
                    reason: "nothing to deploy: no merge commit is recorded for \(task.workItem)", canRetry: true),
                reason: "nothing to deploy: no merge commit is recorded")
            return
        }
        let worktree = try await workspace.prepare(repo, workItem: task.workItem, mergedCommit: mergeSHA)
        let (exit, output) = try await commands.run(command, in: worktree, timeout: .seconds(3600), check: false)
        if exit == 0 {
            let shipped = "deploy_command succeeded on \(mergeSHA.prefix(12))"
            if settings.switches.applies(.postDeploy, to: repo), let healthURL = repo.healthURL {
                // Watched: the stage's verdict is the post-deploy watch's (PostDeployWatch.swift).
                try await outcome.handOver(
                    .init(workItem: task.workItem, repo: repo.repo, mergeSHA: mergeSHA, healthURL: healthURL),
                    to: watches, current: task.currentVisit, reason: shipped)
            } else {
                try await outcome.apply(.stagePassed, reason: shipped)
            }
            try await workspace.cleanup(repo, workItem: task.workItem)
        } else {
            let reason = "deploy_command exited \(exit) on \(mergeSHA.prefix(12)):\n\(output.suffix(4000))"
            try await outcome.apply(.gateFailed(reason: reason, attempt: attempt), reason: String(reason.prefix(2000)))
        }
    }
}
