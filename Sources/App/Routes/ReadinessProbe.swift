import Logging
import Store

/// Answers `GET /health/ready` without letting a flood of probes reach the database or the pool:
/// at most one check runs at a time, on a session of its own; callers arriving meanwhile share its
/// result, and a result is reused for `freshFor`.
actor ReadinessProbe {
    private let session: DedicatedSession
    private let freshFor: Duration
    private var last: (at: ContinuousClock.Instant, error: String?)?
    private var checking = false
    private var waiters: [CheckedContinuation<String?, Never>] = []

    init(configuration: DatabaseConfiguration, freshFor: Duration = .seconds(1), logger: Logger) {
        self.session = DedicatedSession(
            configuration: configuration, name: "readiness", timeout: .seconds(3), logger: logger)
        self.freshFor = freshFor
    }

    /// `nil` when the database answers, else why not.
    func check() async -> String? {
        if let last, ContinuousClock.now - last.at < freshFor { return last.error }
        if checking { return await withCheckedContinuation { waiters.append($0) } }
        checking = true
        let problem: String?
        do {
            try await session.ping()
            problem = nil
        } catch {
            problem = "\(error)"
        }
        last = (ContinuousClock.now, problem)
        checking = false
        let waiting = waiters
        waiters = []
        waiting.forEach { $0.resume(returning: problem) }
        return problem
    }
}
