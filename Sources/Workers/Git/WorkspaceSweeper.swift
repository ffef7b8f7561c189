import Foundation
import Logging
import ServiceLifecycle
import Store

/// Every replica's own clean-up of its workspace. As a service, at start and then every
/// `interval`, it removes the temporary worktrees of local merges that a kill left behind (see
/// `Workspace.removeStaleMergeWorktrees`): crash debris, removed whatever the reaper's switch.
///
/// The reaper's `worktree-prune` (``pruneWorktrees(endedFor:)``, run by ``ReplicaReaper``) removes
/// the worktree of a task that ended (done, failed, cancelled — whichever replica ended it) once
/// it has stayed ended for the retention. A done task's worktree is removed by its deploy stage
/// already; failed and cancelled ones are kept that long so an operator can look at what the
/// agent left.
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

    /// One sweep of what killed merges left behind.
    public func sweep() async {
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
        }
        let orphans = workspace.removeOrphanMergeFolders(olderThan: Self.orphanMergeAge)
        if !orphans.isEmpty {
            logger.notice("removed merge worktrees of no known clone", metadata: ["workspace.paths": "\(orphans)"])
        }
    }

    /// The reaper's `worktree-prune`: removes the worktrees (with their branch and HOME) of tasks
    /// that ended at least `retention` ago, by the database clock. A worktree whose task is not
    /// ended — or not in the table at all — is never touched. Returns the work items removed.
    public func pruneWorktrees(endedFor retention: Duration) async throws -> [String] {
        var removed: [String] = []
        for repo in repos {
            let directory = workspace.worktreesDirectory(repo)
            let present = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
                !$0.hasPrefix(".")
            }
            let ended = try await tasks.ended(among: present, before: retention)
            for workItem in present.sorted() where ended.contains(workItem) {
                do {
                    try await workspace.cleanup(repo, workItem: workItem)
                    removed.append(workItem)
                } catch {
                    logger.warning(
                        "could not remove a worktree", metadata: ["task.work_item": "\(workItem)", "error": "\(error)"])
                }
            }
        }
        if !removed.isEmpty {
            logger.info("removed worktrees of ended tasks", metadata: ["task.work_items": "\(removed)"])
        }
        return removed
    }
}
