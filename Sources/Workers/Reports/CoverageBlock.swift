import Foundation
import Store

/// The `coverage` block: the coverage gate's kill switch and, per configured repository, its
/// policy, floor, epsilon, whether a `coverage_command` is set (without one the gate never runs
/// for it), and its baseline with where it came from (the merge commit and task, or an operator)
/// and when.
public struct CoverageBlock: QueueReportBlock {
    /// The block's figures.
    public struct Body: Encodable, Sendable {
        public let enabled: Bool
        public let scope: String
        public let outOfScope: [String]
        public let repos: [Repository]
    }

    /// One configured repository's coverage gate.
    public struct Repository: Encodable, Sendable {
        public let repo: String
        public let policy: String
        public let floor: Double
        public let epsilon: Double
        public let coverageCommandSet: Bool
        /// Nil (left out) until a merge measured one or an operator set one.
        public let baseline: Baseline?
    }

    /// A baseline and where it came from.
    public struct Baseline: Encodable, Sendable {
        public let value: Double
        /// The merge commit whose measurement set it; nil when an operator set it.
        public let commitSHA: String?
        public let workItem: String?
        public let setBy: String
        public let updatedAt: Date

        init(_ stored: CoverageStore.Baseline) {
            value = stored.baseline
            commitSHA = stored.commitSHA
            workItem = stored.workItem
            setBy = stored.setBy.rawValue
            updatedAt = stored.updatedAt
        }
    }

    public let key = "coverage"
    let enabled: Bool
    let repos: [RepositorySettings]

    /// Creates the block for the kill switch (`ORCH_COVERAGE_GATE_ENABLED`) and the configured repositories.
    public init(enabled: Bool, repos: [RepositorySettings]) {
        self.enabled = enabled
        self.repos = repos
    }

    public func read(from pool: ConnectionPool, leader: String?) async throws -> Body {
        let baselines = try await CoverageStore(pool: pool).baselines()
        let scope = GateScope(.coverageGate, repos: repos)
        return Body(
            enabled: enabled, scope: scope.scope, outOfScope: scope.outOfScope,
            repos: repos.map { settings in
                let coverage = settings.gates.coverage
                return Repository(
                    repo: settings.repo, policy: coverage.policy.rawValue, floor: coverage.floor,
                    epsilon: coverage.epsilon, coverageCommandSet: settings.coverageCommand != nil,
                    baseline: baselines.first { $0.repo == settings.repo }.map(Baseline.init))
            })
    }
}
