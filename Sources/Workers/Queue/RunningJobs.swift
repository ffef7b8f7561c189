import Store
import Synchronization

/// The jobs one worker is running: the signal that stops each, and when its time is up.
final class RunningJobs: Sendable {
    private struct Entry {
        let lease: JobLease
        let signal: JobStopSignal
        let deadline: ContinuousClock.Instant
    }

    private let jobs = Mutex<[Int64: Entry]>([:])

    var count: Int { jobs.withLock { $0.count } }

    func insert(_ lease: JobLease, signal: JobStopSignal, deadline: ContinuousClock.Instant) {
        jobs.withLock { $0[lease.jobID] = Entry(lease: lease, signal: signal, deadline: deadline) }
    }

    /// The leases of the running jobs claimed under `replicaID`.
    func leases(replicaID: String) -> [JobLease] {
        jobs.withLock { jobs in jobs.values.map(\.lease).filter { $0.replicaID == replicaID } }
    }

    func remove(_ id: Int64) {
        jobs.withLock { _ = $0.removeValue(forKey: id) }
    }

    func signals(for ids: [Int64]) -> [JobStopSignal] {
        jobs.withLock { jobs in ids.compactMap { jobs[$0]?.signal } }
    }

    var allSignals: [JobStopSignal] { jobs.withLock { $0.values.map(\.signal) } }

    /// Signals of jobs past their deadline.
    func overdue(at now: ContinuousClock.Instant) -> [JobStopSignal] {
        jobs.withLock { jobs in jobs.values.filter { $0.deadline <= now }.map(\.signal) }
    }
}
