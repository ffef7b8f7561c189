import Metrics
import Prometheus
import Store

/// The process's metrics backend: swift-metrics bootstrapped once with a Prometheus registry,
/// which `GET /metrics/prometheus` renders.
///
/// swift-metrics allows one bootstrap per process and binds a metric to the backend current at its
/// creation, so everything that builds routes or workers touches ``registry`` first.
enum Telemetry {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// The Prometheus text exposition of every metric registered so far.
    static func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// `orch_webhook_deliveries_total{source, outcome}`: every webhook request's fate.
struct WebhookMetrics: Sendable {
    enum Outcome: String, CaseIterable, Sendable {
        case accepted, ignored, duplicate, unauthorized, invalid
        case tooLarge = "too_large"
        case unavailable
    }

    private let counters: [String: Metrics.Counter]

    init() {
        _ = Telemetry.registry
        var counters: [String: Metrics.Counter] = [:]
        for source in WebhookSource.allCases {
            for outcome in Outcome.allCases {
                counters["\(source.rawValue).\(outcome.rawValue)"] = Metrics.Counter(
                    label: "orch_webhook_deliveries_total",
                    dimensions: [("source", source.rawValue), ("outcome", outcome.rawValue)])
            }
        }
        self.counters = counters
    }

    func count(_ source: WebhookSource, _ outcome: Outcome) {
        counters["\(source.rawValue).\(outcome.rawValue)"]?.increment()
    }
}
