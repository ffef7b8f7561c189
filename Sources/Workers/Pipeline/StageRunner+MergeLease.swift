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
        _ task: TaskRecord, repo: RepositorySettings, outcome: StageOutcome,
        _ merge: (StageOutcome) async throws -> Void
    ) async throws {
        guard settings.switches.applies(.mergeGate, to: repo) else { return try await merge(outcome) }
        let ran: Bool?
        do {
            ran = try await mergeLeases.withLease(
                repo: repo.repo, workItem: task.workItem, replicaID: outcome.context.lease.replicaID
            ) { lease in
                // Every step that cannot be undone first confirms the lease: a merge whose lease's
                // session ended (another merge may hold it now) stops before it.
                var guarded = outcome
                guarded.precondition = { try await lease.confirm() }
                try await merge(guarded)
                return true
            }
        } catch let lost as MergeLeaseLost {
            // Tried again under a new lease, without spending an attempt: a merge that did reach
            // Gitea is then found merged (405) and verified as usual.
            outcome.logger.warning("\(lost.description)", metadata: ["merge.repo": "\(repo.repo)"])
            throw JobPostponed(after: Self.mergeLeaseRetry, reason: lost.description)
        }
        guard ran == nil else { return }
        outcome.logger.debug("merge lease taken: the merge waits", metadata: ["merge.repo": "\(repo.repo)"])
        throw JobPostponed(
            after: Self.mergeLeaseRetry, reason: "\(MergeLeaseStore.waitReason) of \(repo.repo)")
    }
}
