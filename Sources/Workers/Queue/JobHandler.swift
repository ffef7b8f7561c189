import Foundation
import Logging
import Store
import Synchronization

/// What a handler gets: the job, its fencing token and a logger carrying `job.*` metadata.
public struct JobContext: Sendable {
    /// The claimed job.
    public let job: Job
    /// The fencing token of this claim.
    public let lease: JobLease
    /// Set when the handler completed the job row itself, inside its outcome's transaction.
    public let completion = JobCompletion()
    let baseLogger: Logger

    /// A logger with `job.id`, `job.kind` and `job.attempt` attached. Built on first use: setting
    /// metadata on a logger is not free, and most jobs never log.
    public var logger: Logger {
        var logger = baseLogger
        for (key, value) in JobLog.metadata(of: job) { logger[metadataKey: key] = value }
        return logger
    }
}

/// Whether a handler completed its own job row (in the same transaction as its outcome, fenced),
/// so the worker must not complete it again.
public final class JobCompletion: Sendable {
    private let completed = Atomic<Bool>(false)

    /// Records that the job row was completed by the handler's committed outcome.
    public func markCompleted() { completed.store(true, ordering: .releasing) }

    /// Whether the handler completed the job row.
    public var isCompleted: Bool { completed.load(ordering: .acquiring) }
}

/// Logs about one job, attaching its `job.*` metadata only when a message is actually emitted.
struct JobLog {
    let base: Logger
    let job: Job

    static func metadata(of job: Job) -> Logger.Metadata {
        ["job.id": "\(job.id)", "job.kind": "\(job.kind)", "job.attempt": "\(job.attempt)"]
    }

    func callAsFunction(
        _ level: Logger.Level, _ message: @autoclosure () -> Logger.Message,
        _ extra: @autoclosure () -> Logger.Metadata = [:]
    ) {
        base.log(level: level, message(), metadata: Self.metadata(of: job).merging(extra()) { $1 })
    }
}

/// Code that runs one kind of job. Handlers must be idempotent: delivery is at-least-once.
public struct JobHandler: Sendable {
    /// The job kind this handler serves.
    public let kind: String
    /// Wall-clock limit for one attempt; past it the attempt fails and is retried with backoff.
    public let timeout: Duration
    let body: @Sendable (JobContext) async throws -> Void
    /// What a job failing for good means beyond the job row, written in the transaction that
    /// marks it `failed`: the job, its error, and whether retrying could have helped (its
    /// attempts ran out) rather than not (a permanent error).
    let failedForGood: (@Sendable (Job, String, Bool, Connection) async throws -> Void)?
    /// Run inside the claim's transaction (docs/architecture.md, "Inline jobs"): the job row is
    /// written once, with its outcome, in the commit that also claims the next batch. For short
    /// handlers that never write their own job row (they would wait on the claim's row lock);
    /// an inline attempt is cut at half the lease.
    public let isInline: Bool

    /// Creates a handler; `failedForGood` (if any) runs in the transaction that fails a job for
    /// good. An inline handler (`inline: true`) cannot have one: its failure is written in the
    /// claim's transaction.
    public init(
        kind: String, timeout: Duration = .seconds(300), inline: Bool = false,
        failedForGood: (@Sendable (Job, String, Bool, Connection) async throws -> Void)? = nil,
        _ body: @escaping @Sendable (JobContext) async throws -> Void
    ) {
        precondition(!inline || failedForGood == nil, "an inline job kind cannot have a failedForGood hook")
        self.kind = kind
        self.timeout = timeout
        self.isInline = inline
        self.failedForGood = failedForGood
        self.body = body
    }
}

/// Thrown by a handler to fail the job without further retries.
public struct PermanentJobFailure: Error, CustomStringConvertible {
    /// Why the job cannot succeed.
    public let description: String

    public init(_ description: String) { self.description = description }
}

/// An error that knows whether running the job again can help: an outbound call's network
/// error, 429 or 5xx can; a 401, 404 or "chat not found" cannot, and retrying it only spends
/// attempts. The worker retries (or fails for good) accordingly.
public protocol RetryClassifiedError: Error {
    var isRetryable: Bool { get }
}

/// The handlers a worker can run, by job kind.
public struct JobRegistry: Sendable {
    private var handlers: [String: JobHandler] = [:]

    /// An empty registry.
    public init() {}

    /// Adds (or replaces) the handler for its kind.
    public mutating func register(_ handler: JobHandler) {
        handlers[handler.kind] = handler
    }

    /// Adds a handler built from a closure.
    public mutating func register(
        _ kind: String, timeout: Duration = .seconds(300), inline: Bool = false,
        _ body: @escaping @Sendable (JobContext) async throws -> Void
    ) {
        register(JobHandler(kind: kind, timeout: timeout, inline: inline, body))
    }

    /// The handler for a kind.
    public func handler(for kind: String) -> JobHandler? { handlers[kind] }

    /// Registered kinds, sorted.
    public var kinds: [String] { handlers.keys.sorted() }

    /// Kinds run inline, sorted.
    public var inlineKinds: [String] { handlers.values.filter(\.isInline).map(\.kind).sorted() }
}

/// Thrown by a handler that cannot run now but should later (a circuit breaker is open, CI is
/// still running): the job goes back to the queue without spending an attempt.
public struct JobPostponed: Error, CustomStringConvertible {
    /// When the job is due again.
    public enum Due: Sendable, Equatable {
        /// At an instant the database gave (a circuit breaker's `open_until`).
        case at(Date)
        /// After a delay counted from the database's `now()`, never from this replica's clock.
        case after(Duration)
    }

    public let due: Due
    public let reason: String

    /// Postpones until an instant read from the database.
    public init(until: Date, reason: String) {
        self.due = .at(until)
        self.reason = reason
    }

    /// Postpones for `delay` from the database's `now()` when the postponement is recorded.
    public init(after delay: Duration, reason: String) {
        self.due = .after(delay)
        self.reason = reason
    }

    public var description: String {
        switch due {
        case .at(let until): "postponed until \(until): \(reason)"
        case .after(let delay): "postponed for \(delay): \(reason)"
        }
    }

    /// Puts the job back in the queue as due; false when its lease is no longer ours.
    func record(_ lease: JobLease, in store: JobStore) async throws -> Bool {
        switch due {
        case .at(let until): try await store.postpone(lease, until: until, reason: reason)
        case .after(let delay): try await store.postpone(lease, after: delay, reason: reason)
        }
    }
}
