import Foundation
import Logging
import NIOPosix
import Store

#if canImport(Glibc)
import Glibc
#endif

/// The file-ownership check of one replica (`ORCH_FS_NORMALIZE_ENABLED`): scans the replica's
/// work dir with ``FileOwnership`` at startup (one log line; an alert when entries are not the
/// service's), when an operator asks (`POST /fs-normalize/check`), and when `/queue` is read and
/// the last scan is older than the TTL. Each scan is recorded in `fs_ownership`, per host, so any
/// replica's `/queue` shows every host's. A scan walks up to `maxEntries` entries off the
/// cooperative pool; the TTL keeps `/queue` from walking the tree on every read.
public actor FileOwnershipCheck {
    /// What is scanned, how far, how long a scan is reused, and whether chown is allowed.
    public struct Settings: Sendable, Equatable {
        public var workdir: String
        /// `ORCH_FS_NORMALIZE_MAX_ENTRIES`: the bound of one scan.
        public var maxEntries: Int
        /// `ORCH_FS_NORMALIZE_TTL`: how long a scan answers `/queue`.
        public var ttl: Duration
        /// `ORCH_FS_NORMALIZE_CHOWN`: the check may give entries back itself (at startup, and when
        /// asked with `normalize=1`), which only root can.
        public var chown: Bool
        /// The agents' configured users, whose entries are expected.
        public var agentUIDs: Set<UInt32>

        public init(
            workdir: String, maxEntries: Int = 100_000, ttl: Duration = .seconds(300), chown: Bool = false,
            agentUIDs: Set<UInt32> = []
        ) {
            self.workdir = workdir
            self.maxEntries = maxEntries
            self.ttl = ttl
            self.chown = chown
            self.agentUIDs = agentUIDs
        }
    }

    /// What the opt-in chown did, or why it did not run.
    public struct Normalization: Sendable, Equatable, Encodable {
        public let performed: Bool
        /// Entries given back to the service's user.
        public let changed: Int
        public let failed: Int
        /// The pass stopped at its bound.
        public let truncated: Bool
        /// Why it did not run, or its first failure.
        public let reason: String?
    }

    /// One check's answer.
    public struct Report: Sendable, Equatable {
        public let scan: OwnershipScan
        /// The command that gives the work dir back; nil when nothing is mismatched.
        public let healing: String?
        /// nil when no chown was asked for.
        public let normalization: Normalization?
    }

    public nonisolated let settings: Settings
    public nonisolated let host: String
    public nonisolated let replicaID: String
    let store: FileOwnershipStore
    let alerts: Alerts
    let logger: Logger
    let expectation: FileOwnership.Expectation
    /// Whether this process may chown (it runs as root).
    let privileged: Bool
    let now: @Sendable () -> Date
    private var last: Report?

    /// `privileged` and `now` are the process's in production; tests pass their own.
    public init(
        settings: Settings, host: String, replicaID: String, pool: ConnectionPool, alerts: Alerts, logger: Logger,
        privileged: Bool = geteuid() == 0, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        var settings = settings
        // The healing command is run from anywhere: it names the work dir absolutely.
        settings.workdir = URL(fileURLWithPath: settings.workdir).standardizedFileURL.path
        self.settings = settings
        self.host = host
        self.replicaID = replicaID
        store = FileOwnershipStore(pool: pool)
        self.alerts = alerts
        self.logger = logger
        expectation = .service(agentUIDs: settings.agentUIDs)
        self.privileged = privileged
        self.now = now
    }

    /// The last scan while it is younger than the TTL, else a fresh one.
    public func current() async -> Report {
        if let last, now().timeIntervalSince(last.scan.scannedAt) < settings.ttl.seconds { return last }
        return await check(normalize: false)
    }

    /// A fresh scan, after the opt-in chown when `normalize` asks for it (so the scan shows what
    /// is left); recorded in `fs_ownership`.
    public func check(normalize: Bool) async -> Report {
        let normalization = normalize ? await normalizeMismatched() : nil
        let settings = settings
        let expectation = expectation
        let scannedAt = now()
        let scan = await offPool {
            FileOwnership.scan(
                settings.workdir, expecting: expectation, maxEntries: settings.maxEntries, now: scannedAt)
        }
        let healing =
            scan.needsHealing
            ? FileOwnership.healingCommand(
                workdir: settings.workdir, uid: scan.uid, gid: scan.gid, privileged: privileged) : nil
        last = Report(scan: scan, healing: healing, normalization: nil)
        do {
            try await store.record(
                host: host, replicaID: replicaID, scan: scan, healing: healing,
                normalized: normalization.flatMap { $0.performed ? $0.changed : nil })
        } catch {
            logger.warning(
                "could not record a file ownership scan",
                metadata: ["fs.workdir": "\(settings.workdir)", "db.error": "\(error)"])
        }
        return Report(scan: scan, healing: healing, normalization: normalization)
    }

    /// The start of the startup check's one line: it is the last step of the startup
    /// housekeeping (`StartupHousekeeping`), logged by the check itself at the level its finding
    /// deserves.
    static let startupLine = "startup housekeeping: ownership check: "

    /// The startup check: a fresh scan — after a chown when `ORCH_FS_NORMALIZE_CHOWN` is on — said
    /// in one log line with what it found and did, and an alert when entries are still not the
    /// service's (every stage on this host would fail at `prepare` until they are).
    @discardableResult
    public func startup() async -> Report {
        let report = await check(normalize: settings.chown)
        let scan = report.scan
        var metadata: Logger.Metadata = [
            "fs.workdir": "\(scan.workdir)", "fs.uid": "\(scan.uid)", "fs.scanned": "\(scan.scanned)",
            "fs.mismatched": "\(scan.mismatched)", "fs.truncated": "\(scan.truncated)",
            "fs.duration_ms": "\(scan.durationMs)",
        ]
        if scan.agentOwned > 0 { metadata["fs.agent_owned"] = "\(scan.agentOwned)" }
        if let normalization = report.normalization {
            metadata[normalization.performed ? "fs.normalized" : "fs.not_normalized"] =
                normalization.performed ? "\(normalization.changed)" : "\(normalization.reason ?? "")"
        }
        if let error = scan.error {
            metadata["error"] = "\(error)"
            logger.warning("\(Self.startupLine)file ownership check could not scan the work dir", metadata: metadata)
            await alerts.raise(
                "⚠️ File ownership check on \(host) could not scan \(scan.workdir): \(error)",
                key: "fs-ownership:\(host):\(scan.workdir)")
        } else if let healing = report.healing {
            metadata["fs.samples"] = "\(scan.samples.map { "\($0.path) (uid \($0.uid))" })"
            metadata["fs.healing"] = "\(healing)"
            // Git refuses such clones, so every stage on this host fails until they are given back.
            logger.warning(
                "\(Self.startupLine)files under the work dir are not owned by the service's user", metadata: metadata)
            let example = scan.samples.first.map { " (e.g. \($0.path), uid \($0.uid))" } ?? ""
            await alerts.raise(
                "⚠️ \(scan.mismatched)\(scan.truncated ? "+" : "") entries under \(scan.workdir) on \(host) are not "
                    + "owned by the orchestrator's user, uid \(scan.uid)\(example). Stages on this host fail at "
                    + "prepare until they are given back: \(healing)",
                key: "fs-ownership:\(host):\(scan.workdir)")
        } else {
            logger.info("\(Self.startupLine)file ownership checked: the work dir is the service's", metadata: metadata)
        }
        return report
    }

    /// The opt-in chown pass, or why it cannot run.
    private func normalizeMismatched() async -> Normalization {
        guard settings.chown else {
            return Normalization(
                performed: false, changed: 0, failed: 0, truncated: false,
                reason: "chown is off: set ORCH_FS_NORMALIZE_CHOWN=1, or run the healing command")
        }
        guard privileged else {
            return Normalization(
                performed: false, changed: 0, failed: 0, truncated: false,
                reason:
                    "not privileged: the service runs as uid \(expectation.uid) and only root can chown; "
                    + "run the healing command as root")
        }
        let settings = settings
        let expectation = expectation
        // Not logged here: the caller's one line (startup's, the route's) says what it did.
        let pass = await offPool {
            FileOwnership.normalize(settings.workdir, expecting: expectation, maxEntries: settings.maxEntries)
        }
        return Normalization(
            performed: true, changed: pass.changed, failed: pass.failed, truncated: pass.truncated,
            reason: pass.firstError)
    }

    /// Runs blocking file-system work on NIO's thread pool, not a cooperative thread; inline
    /// when that pool is shut down.
    private nonisolated func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        do {
            return try await NIOThreadPool.singleton.runIfActive(work)
        } catch {
            return work()
        }
    }
}
