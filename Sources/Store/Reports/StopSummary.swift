import Foundation

/// STOP/cancel figures (the `/queue` `stop` block): cancelled tasks, cancelled stage jobs, merges
/// a cancel is waiting for, and the latest cancellations.
public struct StopSummary: Sendable, Equatable, Encodable {
    /// One cancellation from a task's history.
    public struct Cancellation: Sendable, Equatable, Encodable {
        public let workItem: String
        public let actor: String
        public let reason: String?
        public let at: Date

        public init(workItem: String, actor: String, reason: String?, at: Date) {
            self.workItem = workItem
            self.actor = actor
            self.reason = reason
            self.at = at
        }
    }

    /// Tasks in status `cancelled`.
    public let tasks: Int
    /// Stage jobs in status `cancelled`.
    public let jobs: Int
    /// Merges running for cancelled tasks: the cancel takes effect when they finish.
    public let deferred: Int
    /// The latest cancellations, newest first.
    public let recent: [Cancellation]

    public init(tasks: Int, jobs: Int, deferred: Int, recent: [Cancellation]) {
        self.tasks = tasks
        self.jobs = jobs
        self.deferred = deferred
        self.recent = recent
    }

    // The operator-facing names say what was cancelled; the properties keep the store's terms.
    enum CodingKeys: String, CodingKey {
        case tasks = "cancelled_tasks"
        case jobs = "cancelled_stage_jobs"
        case deferred, recent
    }
}
