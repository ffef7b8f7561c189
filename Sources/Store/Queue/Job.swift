import Foundation

/// A job to put on the queue.
public struct NewJob: Sendable {
    /// Which handler runs it.
    public var kind: String
    /// The queue it waits in; workers claim from a set of queues.
    public var queue: String
    /// Handler input.
    public var payload: JSONB
    /// Lower runs first.
    public var priority: Int
    /// Earliest start; `nil` means now by the database clock.
    public var runAt: Date?
    /// Claims allowed before the job is marked failed.
    public var maxAttempts: Int
    /// When set, at most one queued-or-running job has this key; a second enqueue is a no-op.
    public var dedupeKey: String?

    public init(
        kind: String, queue: String = "default", payload: JSONB = JSONB(text: "{}"), priority: Int = 0,
        runAt: Date? = nil, maxAttempts: Int = 5, dedupeKey: String? = nil
    ) {
        self.kind = kind
        self.queue = queue
        self.payload = payload
        self.priority = priority
        self.runAt = runAt
        self.maxAttempts = max(1, maxAttempts)
        self.dedupeKey = dedupeKey
    }
}

/// Where a job is in its life.
public enum JobStatus: String, Sendable, CaseIterable, PostgresDecodable {
    case queued, running, completed, failed, cancelled

    public init(postgresText: String) throws {
        guard let value = JobStatus(rawValue: postgresText) else {
            throw PostgresError(kind: .decoding, message: "unknown job status '\(postgresText)'")
        }
        self = value
    }
}

/// The fencing token of one claim: every write about a running job names all three.
public struct JobLease: Sendable, Hashable, CustomStringConvertible {
    /// The job.
    public let jobID: Int64
    /// The replica that claimed it.
    public let replicaID: String
    /// The attempt number of this claim.
    public let attempt: Int

    public init(jobID: Int64, replicaID: String, attempt: Int) {
        self.jobID = jobID
        self.replicaID = replicaID
        self.attempt = attempt
    }

    public var description: String { "job \(jobID) attempt \(attempt) on \(replicaID)" }
}

/// A job row.
public struct Job: Sendable {
    public let id: Int64
    public let kind: String
    public let queue: String
    public let payload: JSONB
    public let status: JobStatus
    public let priority: Int
    public let attempt: Int
    public let maxAttempts: Int
    public let dedupeKey: String?
    public let lockedBy: String?
    public let lastError: String?
    public let cancelRequested: Bool
    public let runAt: Date
    public let createdAt: Date
    /// When the latest claim happened (not filled in on the `Job` a claim returns; read the row for it).
    public let claimedAt: Date?
    public let finishedAt: Date?
    public let leaseExpiresAt: Date?

    /// The fencing token, for a job this replica holds.
    public var lease: JobLease? {
        guard status == .running, let lockedBy else { return nil }
        return JobLease(jobID: id, replicaID: lockedBy, attempt: attempt)
    }

    /// The columns `init(row:)` reads, listed explicitly so prepared statements keep their result
    /// type when a later migration adds a column.
    static let columns = """
        id, kind, queue, payload, status, priority, attempt, max_attempts, dedupe_key, locked_by, last_error, \
        cancel_requested, run_at, created_at, claimed_at, finished_at, lease_expires_at
        """

    /// A column list with each column qualified by a table alias (used to build constant statements once).
    static func qualified(_ columns: String, by alias: String) -> String {
        columns.split(separator: ",").map { "\(alias).\($0.trimmingCharacters(in: .whitespaces))" }.joined(
            separator: ", ")
    }

    /// The columns a claim returns: what a handler needs. The rest is known to the claimer
    /// (status running, locked by itself) and not worth formatting and parsing for every job.
    static let claimedColumns =
        "id, kind, queue, payload, priority, attempt, max_attempts, dedupe_key, last_error, run_at, created_at"

    /// A row returned by a claim for `replicaID` (see `claimedColumns`).
    init(claimedRow row: Row, replicaID: String) throws {
        id = try row.decode("id")
        kind = try row.decode("kind")
        queue = try row.decode("queue")
        payload = try row.decode("payload")
        status = .running
        priority = try row.decode("priority")
        attempt = try row.decode("attempt")
        maxAttempts = try row.decode("max_attempts")
        dedupeKey = try row.decode("dedupe_key")
        lockedBy = replicaID
        lastError = try row.decode("last_error")
        cancelRequested = false
        runAt = try row.decode("run_at")
        createdAt = try row.decode("created_at")
        claimedAt = nil
        finishedAt = nil
        leaseExpiresAt = nil
    }

    init(row: Row) throws {
        id = try row.decode("id")
        kind = try row.decode("kind")
        queue = try row.decode("queue")
        payload = try row.decode("payload")
        status = try row.decode("status")
        priority = try row.decode("priority")
        attempt = try row.decode("attempt")
        maxAttempts = try row.decode("max_attempts")
        dedupeKey = try row.decode("dedupe_key")
        lockedBy = try row.decode("locked_by")
        lastError = try row.decode("last_error")
        cancelRequested = try row.decode("cancel_requested")
        runAt = try row.decode("run_at")
        createdAt = try row.decode("created_at")
        claimedAt = try row.decode("claimed_at")
        finishedAt = try row.decode("finished_at")
        leaseExpiresAt = try row.decode("lease_expires_at")
    }
}

extension JobStatus: Encodable {}

extension Job: Encodable {
    /// What an operator reads about a job; the payload, priority and lease columns stay out.
    enum CodingKeys: String, CodingKey {
        case id, kind, queue, status, attempt, maxAttempts, lastError, lockedBy, createdAt, finishedAt
    }
}
