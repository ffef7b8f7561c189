import Foundation
import Logging
import ServiceLifecycle
import Store

/// Every replica's own clean-up of its workspace, at start and then every `interval`: the
/// worktree of a task that ended (done, failed, cancelled — whichever replica ended it) is
/// removed. A done task's worktree is removed by its deploy stage already; cancelled and failed
/// tasks end elsewhere, so this sweep finds them. It also removes the temporary worktrees of local
/// merges that a kill left behind (see `Workspace.removeStaleMergeWorktrees`).
public struct WorkspaceSweeper: Service {
    let workspace: Workspace
    let repos: [RepositorySettings]
    let tasks: TaskStore
    let interval: Duration
    let logger: Logger

    public init(
        workspace: Workspace, repos: [RepositorySettings], pool: ConnectionPool, interval: Duration = .seconds(60),
        logger: Logger
    ) {
        self.workspace = workspace
        self.repos = repos
        self.tasks = TaskStore(pool: pool)
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sweep()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// A merge worktree that no clone claims is removed once this old: a merge (a fetch, a merge
    /// and a push, each with a timeout of at most ten minutes) never lasts this long.
    static let orphanMergeAge: TimeInterval = 60 * 60

    /// One sweep; returns the work items whose worktrees it removed.
    @discardableResult
    public func sweep() async -> [String] {
        var removed: [String] = []
        for repo in repos {
            do {
                let merges = try await workspace.removeStaleMergeWorktrees(repo)
                if !merges.isEmpty {
                    logger.notice(
                        "removed merge worktrees left by a killed merge", metadata: ["workspace.paths": "\(merges)"])
                }
            } catch {
                logger.warning(
                    "could not remove stale merge worktrees",
                    metadata: ["task.repo": "\(repo.repo)", "error": "\(error)"])
            }
            let directory = workspace.worktreesDirectory(repo)
            let workItems = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
                !$0.hasPrefix(".")
            }
            for workItem in workItems {
                do {
                    guard let task = try await tasks.task(workItem: workItem), task.state.status.isTerminal else {
                        continue
                    }
                    try await workspace.cleanup(repo, workItem: workItem)
                    removed.append(workItem)
                } catch {
                    logger.warning(
                        "could not clean a worktree", metadata: ["task.work_item": "\(workItem)", "error": "\(error)"])
                }
            }
        }
        let orphans = workspace.removeOrphanMergeFolders(olderThan: Self.orphanMergeAge)
        if !orphans.isEmpty {
            logger.notice("removed merge worktrees of no known clone", metadata: ["workspace.paths": "\(orphans)"])
        }
        if !removed.isEmpty {
            logger.info("removed worktrees of ended tasks", metadata: ["task.work_items": "\(removed)"])
        }
        return removed
    }
}
