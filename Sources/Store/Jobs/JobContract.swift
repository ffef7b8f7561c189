import Foundation

/// One kind of job as both sides see it: the enqueuing side builds its ``NewJob`` here and the
/// handler decodes its payload here, so the kind name, payload shape, retry budget, queue and
/// dedupe key are written once.
public protocol JobContract {
    /// What the handler needs; encoded as the job's JSON payload.
    associatedtype Payload: Codable & Sendable

    /// The `jobs.kind` value; handlers are registered under it.
    static var kind: String { get }
    /// The queue the job waits in.
    static var queue: String { get }
    /// Claims allowed before the job is marked failed.
    static var maxAttempts: Int { get }
    /// At most one queued-or-running job has this key; `nil` means no deduplication.
    static func dedupeKey(for payload: Payload) -> String?
}

extension JobContract {
    /// Most jobs wait in the shared queue.
    public static var queue: String { "default" }

    /// Jobs without a natural identity are not deduplicated.
    public static func dedupeKey(for payload: Payload) -> String? { nil }

    /// The job to enqueue for `payload`.
    public static func job(_ payload: Payload, priority: Int = 0, runAt: Date? = nil) throws -> NewJob {
        NewJob(
            kind: kind, queue: queue, payload: try JSONB(encoding: payload), priority: priority, runAt: runAt,
            maxAttempts: maxAttempts, dedupeKey: dedupeKey(for: payload))
    }

    /// The payload of a claimed job of this kind.
    public static func payload(of job: Job) throws -> Payload {
        try job.payload.decode(Payload.self)
    }
}
