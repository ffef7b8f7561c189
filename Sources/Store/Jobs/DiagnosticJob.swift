/// The opt-in diagnostic job kinds (`ORCH_DIAGNOSTIC_JOBS=1`), which exercise the queue without
/// side effects outside the database; operators and tests enqueue them.
public enum DiagnosticJob {
    /// What a diagnostic job may be told: how long to take, what to fail with.
    public struct Payload: Codable, Sendable, Equatable {
        public var ms: Int?
        public var message: String?

        /// Creates a payload.
        public init(ms: Int? = nil, message: String? = nil) {
            self.ms = ms
            self.message = message
        }
    }

    /// `diag.noop`: does nothing.
    public enum Noop: JobContract {
        public typealias Payload = DiagnosticJob.Payload
        public static let kind = "diag.noop"
        public static let maxAttempts = 5
    }

    /// `diag.sleep`: sleeps `ms` (default a second), cancellably.
    public enum Sleep: JobContract {
        public typealias Payload = DiagnosticJob.Payload
        public static let kind = "diag.sleep"
        public static let maxAttempts = 5
    }

    /// `diag.fail`: throws `message`; retried with backoff like any failure.
    public enum Fail: JobContract {
        public typealias Payload = DiagnosticJob.Payload
        public static let kind = "diag.fail"
        public static let maxAttempts = 5
    }

    /// `diag.record`: sleeps `ms`, then writes one `diag_executions` row per execution.
    public enum Record: JobContract {
        public typealias Payload = DiagnosticJob.Payload
        public static let kind = "diag.record"
        public static let maxAttempts = 5
    }

    /// `diag.inline`: like `diag.record`, but an inline kind (run inside the claim's transaction,
    /// docs/architecture.md "Inline jobs"); with a `message` it throws it after recording, so the
    /// failure path is exercised too.
    public enum Inline: JobContract {
        public typealias Payload = DiagnosticJob.Payload
        public static let kind = "diag.inline"
        public static let maxAttempts = 5
    }
}
