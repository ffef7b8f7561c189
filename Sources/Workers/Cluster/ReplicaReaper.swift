import Foundation
import Logging
import ServiceLifecycle
import Store

/// The reaper's every-replica duties (`ORCH_REAPER_ENABLED`): the files in this replica's own
/// `ORCH_WORKDIR`. Each replica's work dir is on its own disk, so the leader could only ever
/// prune its own; every replica prunes what is on its disk instead:
///
/// - `worktree-prune`: worktrees of tasks ended (done, failed, cancelled) longer ago than
///   `ORCH_WORKTREE_RETENTION` — never one of a task still going;
/// - `agent-log-prune`: per-run agent logs (and a failed run's patch) older than
///   `ORCH_AGENT_LOG_RETENTION`, and beyond the newest ``AgentLogRotation/defaultMaxLogs``.
///
/// Both run once in the startup housekeeping, then every `interval`; each run is recorded per
/// replica (``ReplicaDutyRecorder``).
public struct ReplicaReaper: Service {
    /// What the duties keep, and how often they run.
    public struct Settings: Sendable {
        /// How long a task must have stayed ended before its worktree goes (`ORCH_WORKTREE_RETENTION`).
        public var worktreeRetention: Duration
        /// Where the per-run logs are (`<ORCH_WORKDIR>/logs`).
        public var logDirectory: String
        /// How old a log may get (`ORCH_AGENT_LOG_RETENTION`).
        public var logRetention: Duration
        /// How many logs are kept at most, whatever their age.
        public var maxLogs: Int
        /// Between two runs of the duties after the startup housekeeping's.
        public var interval: Duration

        /// Creates the settings.
        public init(
            worktreeRetention: Duration, logDirectory: String, logRetention: Duration,
            maxLogs: Int = AgentLogRotation.defaultMaxLogs, interval: Duration = .seconds(600)
        ) {
            self.worktreeRetention = worktreeRetention
            self.logDirectory = logDirectory
            self.logRetention = logRetention
            self.maxLogs = maxLogs
            self.interval = interval
        }
    }

    /// The duty removing worktrees of ended tasks (its `replica_maintenance_runs` name).
    public static let worktreePruneDuty = "worktree-prune"
    /// The duty removing old per-run agent logs.
    public static let agentLogPruneDuty = "agent-log-prune"

    let settings: Settings
    let sweeper: WorkspaceSweeper
    let recorder: ReplicaDutyRecorder
    let logger: Logger

    /// Creates the duties over `sweeper`'s workspace.
    public init(settings: Settings, sweeper: WorkspaceSweeper, recorder: ReplicaDutyRecorder, logger: Logger) {
        self.settings = settings
        self.sweeper = sweeper
        self.recorder = recorder
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // The startup housekeeping has just run both duties: the first run here is one
                // interval later.
                try? await Task.sleep(for: settings.interval)
                guard !Task.isCancelled else { break }
                _ = try? await pruneWorktrees()
                _ = try? await pruneLogs()
            }
        }
    }

    /// `worktree-prune`, recorded; returns how many worktrees it removed.
    @discardableResult
    public func pruneWorktrees() async throws -> Int {
        do {
            return try await recorder.run(Self.worktreePruneDuty) {
                try await sweeper.pruneWorktrees(endedFor: settings.worktreeRetention).count
            }
        } catch {
            logger.warning("worktree prune failed", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// `agent-log-prune`, recorded; returns how many files it deleted.
    @discardableResult
    public func pruneLogs() async throws -> Int {
        try await recorder.run(Self.agentLogPruneDuty) {
            let deleted = AgentLogRotation.prune(
                directory: settings.logDirectory, olderThan: settings.logRetention, keep: settings.maxLogs)
            if deleted > 0 {
                logger.info("deleted old agent logs", metadata: ["agent.logs_deleted": "\(deleted)"])
            }
            return deleted
        }
    }
}
