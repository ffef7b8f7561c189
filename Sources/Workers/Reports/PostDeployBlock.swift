import Foundation
import Store

/// The `post_deploy` block: the kill switch, the watches in progress (task, repository, since,
/// probes, failures in a row, last status) and the last 20 results (task, result, when, reason).
public struct PostDeployBlock: QueueReportBlock {
    /// A watch in progress.
    public struct Watching: Encodable, Sendable {
        let task: String
        let repo: String
        let since: Date
        let probes: Int
        let consecutiveFailures: Int
        /// Nil before the first probe, or when the last one got no answer (see `last_error`).
        let lastStatus: Int?
        let lastError: String?
    }

    /// A finished watch.
    public struct Finished: Encodable, Sendable {
        let task: String
        let result: String
        let finishedAt: Date?
        let reason: String?
    }

    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope: String
        let outOfScope: [String]
        let watching: [Watching]
        let recent: [Finished]
    }

    public let key = "post_deploy"
    let enabled: Bool
    let scope: GateScope

    /// The block, with the kill switch's state (`ORCH_POST_DEPLOY_ENABLED`) and the configured
    /// repositories.
    public init(enabled: Bool, repos: [RepositorySettings] = []) {
        self.enabled = enabled
        self.scope = GateScope(.postDeploy, repos: repos)
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let store = DeployWatchStore(pool: pool)
        return Body(
            enabled: enabled, scope: scope.scope, outOfScope: scope.outOfScope,
            watching: try await store.watching().map {
                Watching(
                    task: $0.workItem, repo: $0.repo, since: $0.startedAt, probes: $0.probes,
                    consecutiveFailures: $0.consecutiveFailures, lastStatus: $0.lastStatus, lastError: $0.lastError)
            },
            recent: try await store.recent(limit: 20).map {
                Finished(task: $0.workItem, result: $0.result.rawValue, finishedAt: $0.finishedAt, reason: $0.reason)
            })
    }
}
