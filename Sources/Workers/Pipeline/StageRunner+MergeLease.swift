import Foundation
import Logging
import Store

extension StageRunner {
    /// How long a merge job that found its repository's lease taken is postponed. The normal
    /// release makes the waiting jobs due at once; a holder killed outright tells nobody, so this
    /// bounds the hand-over then (the replica that postponed the job looks again when it is due,
    /// before its next poll). Short: a postponed job holds no worker slot, and each look costs a
    /// claim and a read of `pg_locks`.
    static let mergeLeaseRetry: Duration = .milliseconds(500)

    /// Runs the merge under the repository's merge lease, so two merges (with their
    /// verifications) of one repository never overlap across replicas. A lease taken by another
    /// merge postpones this job (no attempt spent, no worker slot held while it waits). With the
    /// merge gate switched off (`ORCH_MERGE_GATE_ENABLED=0`), or the repository out of its scope, the
    /// merge runs without a lease.
    func underMergeLease(
        _ task: TaskRecord, repo: RepositorySettings, outcome: StageOutcome, _ merge: () async throws -> Void
    ) async throws {
        guard settings.switches.applies(.mergeGate, to: repo) else { return try await merge() }
        let ran = try await mergeLeases.withLease(
            repo: repo.repo, workItem: task.workItem, replicaID: outcome.context.lease.replicaID
        ) {
            try await merge()
            return true
        }
        guard ran == nil else { return }
        outcome.logger.debug("merge lease taken: the merge waits", metadata: ["merge.repo": "\(repo.repo)"])
        throw JobPostponed(
            after: Self.mergeLeaseRetry, reason: "\(MergeLeaseStore.waitReason) of \(repo.repo)")
    }
}
