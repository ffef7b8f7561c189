import Foundation

/// One post-deploy watch (a `deploy_watches` row): which deploy it watches and what its probes
/// found so far. Whether to probe, wait or conclude is decided by the worker's pure
/// `PostDeployDecision` from these facts and the database's clock.
public struct DeployWatch: Sendable, Equatable {
    /// How a watch ended, or that it has not.
    public enum Result: String, Sendable, PostgresTextEnum {
        /// Probing: the window has not passed and no verdict yet.
        case watching
        /// The window passed without `failures` failed probes in a row: the deploy stage passed.
        case healthy
        /// `failures` probes in a row failed: the repository was frozen and the task held.
        case degraded
        /// The task left the watched deploy visit (cancelled, retried, the job failed for good).
        case stopped
    }

    public let id: Int64
    public let workItem: String
    public let repo: String
    /// The deploy stage visit watched.
    public let visit: Int
    public let mergeSHA: String
    public let healthURL: String
    /// By the database clock, when the deploy job handed over; the window ends `window` after it.
    public let startedAt: Date
    public let probes: Int
    public let failedProbes: Int
    public let consecutiveFailures: Int
    public let lastProbeAt: Date?
    /// The HTTP status of the last probe; nil when it got none (unreachable, timed out).
    public let lastStatus: Int?
    public let lastError: String?
    public let result: Result
    public let reason: String?
    public let finishedAt: Date?

    static let columns = """
        id, work_item, repo, visit, merge_sha, health_url, started_at, probes, failed_probes, consecutive_failures, \
        last_probe_at, last_status, last_error, result, reason, finished_at
        """

    init(row: Row) throws {
        id = try row.decode("id")
        workItem = try row.decode("work_item")
        repo = try row.decode("repo")
        visit = try row.decode("visit")
        mergeSHA = try row.decode("merge_sha")
        healthURL = try row.decode("health_url")
        startedAt = try row.decode("started_at")
        probes = try row.decode("probes")
        failedProbes = try row.decode("failed_probes")
        consecutiveFailures = try row.decode("consecutive_failures")
        lastProbeAt = try row.decode("last_probe_at")
        lastStatus = try row.decode("last_status")
        lastError = try row.decode("last_error")
        result = try row.decode("result")
        reason = try row.decode("reason")
        finishedAt = try row.decode("finished_at")
    }
}
