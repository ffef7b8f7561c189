/// Where a stored webhook delivery is in its life (`webhook_deliveries.status`).
public enum DeliveryStatus: String, Sendable, Codable, PostgresTextEnum {
    /// Stored; its `process_webhook` job has not finished it yet.
    case pending
    /// Its effect (if any) was applied.
    case processed
    /// Stored but not acted on; the row's reason says why.
    case ignored
    /// Its job failed for good.
    case failed

    /// Whether processing is over: such rows may be pruned, and a job finds nothing left to do.
    public var isFinished: Bool { self != .pending }
}
