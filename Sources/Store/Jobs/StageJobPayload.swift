/// The payload of a `run_stage` job: one try of one stage visit of one task. Both the enqueuing
/// side (`TaskStore`) and the handler decode this one type.
public struct StageJobPayload: Codable, Sendable, Equatable {
    public var work_item: String
    public var stage: String
    /// The stage visit the job was enqueued for; absent in jobs enqueued before visits existed.
    public var visit: Int?
    public var attempt: Int?
    public var feedback: String?

    /// Creates a payload.
    public init(work_item: String, stage: String, visit: Int?, attempt: Int?, feedback: String?) {
        self.work_item = work_item
        self.stage = stage
        self.visit = visit
        self.attempt = attempt
        self.feedback = feedback
    }
}

/// A stage job that should be new already exists (same task, stage, visit and try, queued or
/// running): the transition that wanted it is rolled back rather than losing the enqueue silently.
public struct DuplicateStageJob: Error, CustomStringConvertible {
    public let dedupeKey: String

    public var description: String { "a stage job \(dedupeKey) is already queued or running" }
}

/// A job's fence was broken before its outcome committed: it was rescued, cancelled, handed back
/// or re-claimed elsewhere. The outcome's transaction applied nothing.
public struct JobFenceLost: Error, CustomStringConvertible {
    public let lease: JobLease

    public var description: String {
        "job \(lease.jobID) attempt \(lease.attempt) is no longer held by \(lease.replicaID): "
            + "its outcome was not applied"
    }
}
