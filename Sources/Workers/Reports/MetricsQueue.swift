import Store

/// The `queue` part of `GET /metrics`: jobs by status and by kind, the oldest ready job's wait,
/// and this replica's concurrency.
public struct MetricsQueue: Encodable, Sendable {
    public let figures: QueueFigures
    public let maxConcurrency: Int

    public init(figures: QueueFigures, maxConcurrency: Int) {
        self.figures = figures
        self.maxConcurrency = maxConcurrency
    }

    enum CodingKeys: String, CodingKey {
        case counts, byKind, oldestReadySeconds, maxConcurrency
    }

    /// Kinds as an object keyed by kind; the wait to the millisecond, absent when nothing is ready.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(figures.byStatus, forKey: .counts)
        try container.encode(
            Dictionary(uniqueKeysWithValues: figures.kinds.map { ($0.kind, $0.counts) }), forKey: .byKind)
        try container.encodeIfPresent(figures.oldestReadySeconds?.rounded(toPlaces: 3), forKey: .oldestReadySeconds)
        try container.encode(maxConcurrency, forKey: .maxConcurrency)
    }
}
