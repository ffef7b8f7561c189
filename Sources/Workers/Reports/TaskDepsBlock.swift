import Foundation
import Store

/// The `task_deps` block: the kill switch, every dependency edge (and whether it is done), the
/// blocked tasks with what they still wait for, and the latest edges refused as cycles.
public struct TaskDepsBlock: QueueReportBlock {
    /// A blocked task and the dependencies it waits for.
    public struct Blocked: Encodable, Sendable {
        let workItem: String
        let waitingFor: [String]
    }

    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope: String
        let outOfScope: [String]
        let edges: [TaskStore.DependencyEdge]
        let blocked: [Blocked]
        let cyclesRefused: [TaskStore.RefusedDependency]
    }

    public let key = "task_deps"
    let enabled: Bool
    let scope: GateScope

    /// The block for the kill switch (`ORCH_TASK_DEPS_ENABLED`) and the configured repositories.
    public init(enabled: Bool, repos: [RepositorySettings] = []) {
        self.enabled = enabled
        self.scope = GateScope(.taskDependencies, repos: repos)
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let tasks = TaskStore(pool: pool)
        let (edges, refused) = try await tasks.dependencyGraph()
        let blockedItems = Set(try await tasks.blockedWorkItems())
        let waiting = Dictionary(grouping: edges.filter { !$0.done && blockedItems.contains($0.workItem) }) {
            $0.workItem
        }
        return Body(
            enabled: enabled, scope: scope.scope, outOfScope: scope.outOfScope, edges: edges,
            blocked: waiting.keys.sorted().map { Blocked(workItem: $0, waitingFor: waiting[$0]!.map(\.dependsOn)) },
            cyclesRefused: refused)
    }
}
