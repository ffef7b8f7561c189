import Store
import Synchronization

/// Jobs whose handler succeeded and that wait for their completion to be written.
///
/// The worker's claim loop writes them together with its next claim (one statement, one commit),
/// so a busy worker pays one round trip per batch; a job's slot is reused only once its
/// completion is durable.
final class FinishedJobs: Sendable {
    struct Entry: Sendable {
        let lease: JobLease
        let continuation: CheckedContinuation<Bool, Never>
    }

    private let entries = Mutex<[Entry]>([])

    /// Parks a finished job until the claim loop records it; returns whether it was recorded
    /// (false when the lease was no longer this replica's).
    func waitForCompletion(_ lease: JobLease, wake: AsyncStream<Void>.Continuation) async -> Bool {
        await withCheckedContinuation { continuation in
            entries.withLock { $0.append(Entry(lease: lease, continuation: continuation)) }
            wake.yield()
        }
    }

    /// Takes every waiting entry.
    func takeAll() -> [Entry] {
        entries.withLock { entries in
            defer { entries.removeAll(keepingCapacity: true) }
            return entries
        }
    }

    /// Puts entries back (their write failed; the next round trip retries them).
    func putBack(_ failed: [Entry]) {
        guard !failed.isEmpty else { return }
        entries.withLock { $0.insert(contentsOf: failed, at: 0) }
    }

    var isEmpty: Bool { entries.withLock { $0.isEmpty } }
}
