/// Queue figures for `GET /metrics`: jobs by kind and status, and the age of the oldest job ready
/// to run.
public struct QueueFigures: Sendable, Equatable {
    /// Per kind, sorted by kind.
    public let kinds: [MetricsStore.KindFigures]
    /// Every status present, zero when no job has it.
    public let byStatus: [String: Int]
    /// Seconds the oldest ready job has waited; nil when none is ready.
    public let oldestReadySeconds: Double?

    /// Creates figures.
    public init(kinds: [MetricsStore.KindFigures], byStatus: [String: Int], oldestReadySeconds: Double?) {
        self.kinds = kinds
        self.byStatus = byStatus
        self.oldestReadySeconds = oldestReadySeconds
    }
}
