import Store
import Synchronization

/// The jobs one worker is running, with the signal that stops each; shared with its completer.
final class RunningJobs: Sendable {
    private let jobs = Mutex<[Int64: JobStopSignal]>([:])

    var count: Int { jobs.withLock { $0.count } }

    func insert(_ id: Int64, signal: JobStopSignal) {
        jobs.withLock { $0[id] = signal }
    }

    func remove(_ id: Int64) {
        jobs.withLock { _ = $0.removeValue(forKey: id) }
    }

    func signals(for ids: [Int64]) -> [JobStopSignal] {
        jobs.withLock { jobs in ids.compactMap { jobs[$0] } }
    }

    var allSignals: [JobStopSignal] { jobs.withLock { Array($0.values) } }
}
