import Foundation
import Logging
import ServiceLifecycle
import Store

/// Every replica's own clean-up of its workspace: the worktree of a task that ended (done,
/// failed, cancelled — whichever replica ended it) is removed. A done task's worktree is removed
/// by its deploy stage already; cancelled and failed tasks end elsewhere, so this sweep finds them.
public struct WorkspaceSweeper: Service {
    let workspace: Workspace
    let repos: [RepositorySettings]
    let tasks: TaskStore
    let interval: Duration
    let logger: Logger

    /// Creates the sweeper.
    public init(workspace: Workspace, repos: [RepositorySettings], pool: ConnectionPool, interval: Duration = .seconds(60), logger: Logger) {
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

    /// One sweep; returns the work items whose worktrees it removed.
    @discardableResult
    public func sweep() async -> [String] {
        var removed: [String] = []
        for repo in repos {
            let directory = workspace.worktreesDirectory(repo)
            let workItems = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }
            for workItem in workItems {
                do {
                    guard let task = try await tasks.task(workItem: workItem), task.state.status.isTerminal else { continue }
                    try await workspace.cleanup(repo, workItem: workItem)
                    removed.append(workItem)
                } catch {
                    logger.warning("could not clean a worktree", metadata: ["task.work_item": "\(workItem)", "error": "\(error)"])
                }
            }
        }
        if !removed.isEmpty { logger.info("removed worktrees of ended tasks", metadata: ["task.work_items": "\(removed)"]) }
        return removed
    }
}
