import Metrics
import Synchronization

/// `orch_jobs_total{kind, outcome}`: jobs this replica finished, through swift-metrics (exported
/// by whatever backend the process bootstrapped; Prometheus in `serve`).
///
/// Counters are cached per (kind, outcome): creating one goes through the metrics factory's
/// locked lookup, too slow to repeat for every job of a busy queue. Kinds come from the handler
/// registry, so the label set stays small.
final class JobMetrics: Sendable {
    /// How a run ended, as the `outcome` label says it.
    enum Outcome: String, Sendable {
        case completed, retrying, failed, cancelled, postponed, handedBack = "handed_back", notOwner = "not_owner"
    }

    private struct Key: Hashable {
        let kind: String
        let outcome: Outcome
    }

    private let counters = Mutex<[Key: Counter]>([:])

    func count(kind: String, _ outcome: Outcome) {
        let key = Key(kind: kind, outcome: outcome)
        let counter = counters.withLock { counters in
            if let existing = counters[key] { return existing }
            let created = Counter(
                label: "orch_jobs_total", dimensions: [("kind", kind), ("outcome", outcome.rawValue)])
            counters[key] = created
            return created
        }
        counter.increment()
    }
}
