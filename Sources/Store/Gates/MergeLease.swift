/// A merge lease held now, handed to the body of ``MergeLeaseStore/withLease(repo:workItem:replicaID:isolation:_:)``.
///
/// The lock lives as long as the session that took it. That session can end under a live merge —
/// a server restart, `pg_terminate_backend`, a proxy cutting an idle connection during a long
/// verification — and then another replica may take the lease while this merge goes on. A merge
/// confirms the lease before each step that cannot be undone (the merge call, applying its
/// outcome): a lease lost stops it with ``MergeLeaseLost``, and its job tries again under a new
/// lease (which finds the merge already done, if it was).
public struct MergeLease: Sendable {
    let handle: AdvisoryLockHandle
    /// The repository.
    public let repo: String

    /// Throws ``MergeLeaseLost`` unless the session holding the lock is still alive.
    public func confirm() async throws {
        guard await handle.isHeld() else { throw MergeLeaseLost(repo: repo) }
    }
}

/// The merge lease's session ended while the merge held it: another merge may hold it now.
public struct MergeLeaseLost: Error, CustomStringConvertible {
    public let repo: String

    public var description: String {
        "the merge lease of \(repo) was lost (its database session ended): the merge stops and tries again"
    }
}
