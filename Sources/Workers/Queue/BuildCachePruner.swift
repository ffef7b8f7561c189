import Logging
import Store

/// The leader's `build-cache-prune` duty: runs the operator's prune command (say `docker builder
/// prune -af`) every `interval` with a timeout, so build caches shared by the replicas' hosts do
/// not fill the disk the watchdog warns about. One leader runs it, so it never runs twice at once.
/// Each run — exit status, reclaimed bytes when the output says, error — is recorded in
/// `build_cache_prunes` for the `/queue` `build_cache_prune` block.
public struct BuildCachePruner: Sendable {
    /// The name of the duty (logs, and its `maintenance_runs` record).
    public static let duty = "build-cache-prune"

    /// The command and when it runs.
    public struct Settings: Sendable, Equatable {
        public var command: [String]
        public var interval: Duration
        public var timeout: Duration

        public init(command: [String], interval: Duration, timeout: Duration) {
            self.command = command
            self.interval = interval
            self.timeout = timeout
        }
    }

    let settings: Settings
    let directory: String
    let replicaID: String
    let store: BuildCachePruneStore
    let logger: Logger

    /// `directory` is where the command runs (the work dir).
    public init(settings: Settings, directory: String, replicaID: String, pool: ConnectionPool, logger: Logger) {
        self.settings = settings
        self.directory = directory
        self.replicaID = replicaID
        store = BuildCachePruneStore(pool: pool)
        self.logger = logger
    }

    /// Runs the command once and records the run; returns the bytes it reclaimed (0 when the
    /// output does not say). A failed command is recorded and logged, not thrown: the next
    /// interval tries again.
    @discardableResult
    public func run() async throws -> Int64 {
        let clock = ContinuousClock()
        let started = clock.now
        var exitStatus: Int?
        var reclaimed: Int64?
        var failure: String?
        do {
            let result = try await CommandRunner(keepsHome: true).run(
                settings.command, in: directory, timeout: settings.timeout, check: false)
            exitStatus = Int(result.exitCode)
            reclaimed = ReclaimedSpace.parse(result.output)
            if result.exitCode != 0 {
                failure = "exited \(result.exitCode): \(result.output.suffix(1000))"
            }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            failure = "could not run \(settings.command.first ?? ""): \(error)"
        }
        try await store.record(
            replicaID: replicaID, duration: clock.now - started, exitStatus: exitStatus, reclaimedBytes: reclaimed,
            error: failure)
        if let failure {
            logger.error("build-cache prune failed", metadata: ["prune.error": "\(failure)"])
        } else {
            logger.info(
                "build cache pruned", metadata: ["prune.reclaimed_bytes": "\(reclaimed.map { "\($0)" } ?? "unknown")"])
        }
        return reclaimed ?? 0
    }

    /// The leader duty, every `settings.interval`.
    public var leaderDuty: LeaderDuty {
        LeaderDuty(name: Self.duty, interval: settings.interval) { try await run() }
    }
}
