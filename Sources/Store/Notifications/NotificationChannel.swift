/// The fixed set of LISTEN/NOTIFY channels; names never come from input.
public enum NotificationChannel: String, Sendable, CaseIterable {
    /// A job became available; the payload is the queue name.
    case jobs = "orch_jobs"
    /// A running job should be cancelled; the payload is the job id.
    case cancel = "orch_cancel"

    /// The channel as a quoted SQL identifier.
    var quotedIdentifier: String { "\"\(rawValue)\"" }
}
