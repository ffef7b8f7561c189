import Foundation
import Store

/// The `serial_gate` block: the kill switch, and per repository its limit, the tasks holding a
/// slot and the ones waiting (oldest first), and the freeze with its reason, cause and since.
public struct SerialGateBlock: QueueReportBlock {
    /// One repository's gate.
    public struct Repository: Encodable, Sendable {
        let repo: String
        let maxActiveTasks: Int?
        let active: [String]
        let waiting: [String]
        let frozen: Bool
        let frozenReason: String?
        let frozenBy: String?
        let frozenSince: Date?
    }

    /// The block's figures.
    public struct Body: Encodable, Sendable {
        let enabled: Bool
        let scope: String
        let outOfScope: [String]
        let repos: [Repository]
    }

    public let key = "serial_gate"
    let enabled: Bool
    let configured: [RepositorySettings]

    /// The block for the configured repositories (others appear once they have a gate row or tasks).
    public init(enabled: Bool, repos: [RepositorySettings]) {
        self.enabled = enabled
        self.configured = repos
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let gates = Dictionary(
            try await RepositoryGateStore(pool: pool).gates().map { ($0.repo, $0) }, uniquingKeysWith: { a, _ in a })
        let tasks = try await TaskStore(pool: pool).serialGateTasks()
        let names = Set(configured.map(\.repo)).union(gates.keys).union(tasks.keys).sorted()
        let scope = GateScope(.serialGate, repos: configured)
        return Body(
            enabled: enabled, scope: scope.scope, outOfScope: scope.outOfScope,
            repos: names.map { repo in
                let gate = gates[repo]
                let limit = configured.first { $0.repo == repo }.map {
                    enabled && !scope.outOfScope.contains(repo) ? $0.gates.maxActiveTasks : nil
                }
                return Repository(
                    repo: repo, maxActiveTasks: limit ?? gate?.maxActiveTasks, active: tasks[repo]?.active ?? [],
                    waiting: tasks[repo]?.waiting ?? [], frozen: gate?.frozen ?? false,
                    frozenReason: gate?.frozen == true ? gate?.frozenReason : nil,
                    frozenBy: gate?.frozen == true ? gate?.frozenWorkItem : nil,
                    frozenSince: gate?.frozen == true ? gate?.frozenSince : nil)
            })
    }
}
