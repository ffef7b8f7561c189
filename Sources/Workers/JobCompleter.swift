import Logging
import Store
import Synchronization

/// Coalesces job completions into one fenced `UPDATE` per round trip.
///
/// Under load many jobs finish while the previous flush is in flight; writing them together is
/// what lets the queue approach the database's raw claim/complete ceiling. A caller waits until its
/// completion is durable, so a slot is only freed once the job is recorded done.
final class JobCompleter: Sendable {
    private struct Pending {
        let lease: JobLease
        let continuation: CheckedContinuation<Bool, Never>
    }

    private let store: JobStore
    private let logger: Logger
    private let pending = Mutex<[Pending]>([])
    private let doorbell: AsyncStream<Void>
    private let ring: AsyncStream<Void>.Continuation
    /// How long to keep retrying a flush while the database is unreachable; past it the leases
    /// expire anyway and the jobs are rescued (they run again: delivery is at-least-once).
    private let retryWindow: Duration
    /// Jobs the worker is running (including those waiting here); when more are running than are
    /// waiting, the others may finish within a moment and share the round trip.
    private let runningCount: @Sendable () -> Int

    init(store: JobStore, retryWindow: Duration, logger: Logger, runningCount: @escaping @Sendable () -> Int) {
        self.store = store
        self.logger = logger
        self.retryWindow = retryWindow
        self.runningCount = runningCount
        (doorbell, ring) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Records a job completed; returns `false` if the lease was no longer ours (or the write failed).
    func complete(_ lease: JobLease) async -> Bool {
        await withCheckedContinuation { continuation in
            pending.withLock { $0.append(Pending(lease: lease, continuation: continuation)) }
            ring.yield()
        }
    }

    /// Flushes until cancelled, then flushes whatever is left.
    func run() async {
        for await _ in doorbell {
            await flush()
        }
        await flush()
    }

    private func flush() async {
        while true {
            if pending.withLock({ $0.count }) < runningCount() {
                // Jobs claimed together tend to finish together: give the rest up to a
                // millisecond to join this round trip instead of paying one each.
                try? await Task.sleep(for: .milliseconds(1))
            }
            let batch = pending.withLock { pending -> [Pending] in
                defer { pending.removeAll(keepingCapacity: true) }
                return pending
            }
            if batch.isEmpty { return }
            let completed = await write(batch.map(\.lease))
            for item in batch {
                let done = completed.contains(item.lease.jobID)
                if !done {
                    logger.warning("completion not recorded: the job is no longer held by this replica", metadata: [
                        "job.id": "\(item.lease.jobID)", "job.attempt": "\(item.lease.attempt)",
                    ])
                }
                item.continuation.resume(returning: done)
            }
        }
    }

    private func write(_ leases: [JobLease]) async -> Set<Int64> {
        var backoff = Backoff(initial: .milliseconds(50), maximum: .seconds(2))
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: retryWindow)
        while true {
            do {
                return try await store.complete(leases)
            } catch {
                guard clock.now < deadline else {
                    logger.error("giving up recording completions", metadata: ["db.error": "\(error)", "job.count": "\(leases.count)"])
                    return []
                }
                logger.warning("recording completions failed; retrying", metadata: ["db.error": "\(error)"])
                try? await clock.sleep(for: backoff.next())
            }
        }
    }
}
