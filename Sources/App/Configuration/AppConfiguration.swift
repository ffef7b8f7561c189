import Foundation
import Logging
import Store
import Workers

/// Deployment settings read from the environment; invalid values stop the process.
struct AppConfiguration: Sendable {
    var databaseURL: String?
    var host: String
    var port: Int
    var maxConcurrency: Int
    var poolSize: Int
    var queues: [String]
    var pollInterval: Duration
    /// First delay before a failed job is retried (doubling per attempt, with jitter), and its cap.
    var retryInitial: Duration
    var retryMaximum: Duration
    var heartbeatInterval: Duration
    var heartbeatTTL: Duration
    var electionInterval: Duration
    var shutdownGrace: Duration
    var jobRetention: Duration
    /// `ORCH_WEBHOOK_RETENTION` (default 30 days): finished webhook deliveries older than this are
    /// pruned by the leader, so it is also the window in which a redelivery counts as a duplicate.
    var webhookRetention: Duration
    var replicaName: String
    var diagnosticJobs: Bool
    var logLevel: Logger.Level
    var planeWebhookSecret: String?
    var giteaWebhookSecret: String?
    var insecureWebhooks: Bool
    var webhookMaxBodyBytes: Int
    var adminToken: String?
    /// `ORCH_METRICS_PUBLIC=1` serves `GET /metrics/prometheus` without the admin token (for a
    /// scraper on a private network); every other admin route still needs it.
    var metricsPublic: Bool
    /// `ORCH_REAPER_ENABLED=0` stops the leader's maintenance (rescue of abandoned jobs, replica
    /// sweep, pruning) and every replica's pruning of its own files: the kill switch of the
    /// `reaper` subsystem. On by default.
    var reaperEnabled: Bool
    /// `ORCH_WORKTREE_RETENTION` (default 7 days): a task's worktree stays this long after the
    /// task ended (for an operator to look at), then each replica's reaper removes its own.
    var worktreeRetention: Duration
    /// `ORCH_AGENT_LOG_RETENTION` (default 14 days): per-run agent logs older than this are
    /// deleted by each replica's reaper.
    var agentLogRetention: Duration
    /// `ORCH_LESSONS_ENABLED` (the journal's kill switch: no automatic lessons, and the lessons
    /// routes answer `{"enabled":false}`) and `ORCH_LESSONS_DEDUP_WINDOW` (default 1h).
    var lessons: LessonJournal.Settings
    /// `ORCH_RECONCILE_ENABLED` (on by default): the leader's `reconcile` duty, every
    /// `ORCH_RECONCILE_INTERVAL` (default 60s), repairs tasks a lost write left stuck.
    var reconcileEnabled: Bool
    var reconcileInterval: Duration
    /// `ORCH_DISK_MONITOR_ENABLED` (on by default): every replica watches the fill level of
    /// `ORCH_DISK_MONITOR_PATHS` (default the work dir) against `ORCH_DISK_MONITOR_THRESHOLD`
    /// percent, every `ORCH_DISK_MONITOR_INTERVAL`.
    var diskMonitorEnabled: Bool
    var diskMonitor: DiskMonitor.Settings
    /// `ORCH_BUILD_CACHE_PRUNE_ENABLED` (off by default): the leader runs
    /// `ORCH_BUILD_CACHE_PRUNE_COMMAND` every `ORCH_BUILD_CACHE_PRUNE_INTERVAL` (24h), killed after
    /// `ORCH_BUILD_CACHE_PRUNE_TIMEOUT` (10m).
    var buildCachePruneEnabled: Bool
    var buildCachePrune: BuildCachePruner.Settings
    /// `ORCH_FS_NORMALIZE_ENABLED` (on by default): every replica scans its work dir, at most
    /// `ORCH_FS_NORMALIZE_MAX_ENTRIES` entries, for files not owned by the service's user, at
    /// startup and when asked; a scan answers `/queue` for `ORCH_FS_NORMALIZE_TTL`.
    /// `ORCH_FS_NORMALIZE_CHOWN` (off) lets the check chown them back itself, as root only.
    var fsNormalizeEnabled: Bool
    var fsNormalize: FileOwnershipCheck.Settings
    /// The Plane REST API, when `ORCH_PLANE_API_URL`, `ORCH_PLANE_API_KEY` and
    /// `ORCH_PLANE_WORKSPACE` are all set (used to resolve projects configured without
    /// `plane_project_id`).
    var planeAPI: PlaneAPISettings?
    /// The Gitea REST API (`ORCH_GITEA_API_URL` + `ORCH_GITEA_TOKEN`), for the pipeline's pushes,
    /// pull requests and merges.
    var giteaAPI: GiteaSettings?
    /// Telegram notifications (`ORCH_TELEGRAM_BOT_TOKEN` + `ORCH_TELEGRAM_CHAT_ID`; the API URL
    /// defaults to https://api.telegram.org). Unset token = notifications off.
    var telegram: TelegramSettings?
    /// Where clones, worktrees and per-run agent logs live (`ORCH_WORKDIR`).
    var workdir: String
    /// The most one agent run's log keeps (`ORCH_AGENT_LOG_MAX_BYTES`, default 50 MiB).
    var agentLogMaxBytes: Int
    /// Stage instruction templates (`ORCH_PROMPTS_DIR`, else `./prompts` when it exists).
    var promptsDirectory: String?
    /// How often a merge waiting for CI looks at the combined status (`ORCH_CI_POLL_INTERVAL`).
    var ciPollInterval: Duration
    /// The agents' circuit breaker (`ORCH_RESILIENCE_ENABLED`, `ORCH_BREAKER_THRESHOLD`,
    /// `ORCH_BREAKER_WINDOW`, `ORCH_BREAKER_COOLDOWN`).
    var breaker: BreakerSettings
    /// The repository gates' kill switches (`ORCH_*_GATE_ENABLED`, `ORCH_TASK_DEPS_ENABLED`,
    /// `ORCH_POST_DEPLOY_ENABLED`).
    var gates: GateSwitches
    /// Repositories, agents and labels from the `ORCH_CONFIG` YAML file (empty without one).
    var file: ConfigFile

    /// Reads and validates the environment.
    init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let env = EnvironmentReader(values: environment)
        databaseURL = env.string("ORCH_DATABASE_URL")
        host = env.string("ORCH_HOST") ?? "0.0.0.0"
        port = try env.integer("ORCH_PORT", default: 8080, range: 0...65535)
        maxConcurrency = try env.integer("ORCH_MAX_CONCURRENCY", default: 4, range: 1...1024)
        poolSize = try env.integer("ORCH_DB_POOL_SIZE", default: min(maxConcurrency, 16) + 4, range: 2...512)
        queues = (env.string("ORCH_QUEUES") ?? "default").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.isEmpty }
        if queues.isEmpty { throw ConfigurationError(key: "ORCH_QUEUES", problem: "names no queue") }
        pollInterval = try env.duration("ORCH_POLL_INTERVAL", default: .seconds(2))
        retryInitial = try env.duration("ORCH_JOB_RETRY_INITIAL", default: .seconds(1))
        retryMaximum = try env.duration("ORCH_JOB_RETRY_MAX", default: .seconds(300))
        guard retryMaximum >= retryInitial else {
            throw ConfigurationError(key: "ORCH_JOB_RETRY_MAX", problem: "is below ORCH_JOB_RETRY_INITIAL")
        }
        heartbeatInterval = try env.duration("ORCH_HEARTBEAT_INTERVAL", default: .seconds(5))
        heartbeatTTL = try env.duration("ORCH_HEARTBEAT_TTL", default: heartbeatInterval * 3)
        // A beat may take up to its statement timeout; the lease must outlive one missed beat
        // plus one slow one, or a blip would hand live jobs to another replica.
        let guaranteed = heartbeatInterval * 2 + Self.heartbeatTimeout(interval: heartbeatInterval, ttl: heartbeatTTL)
        guard heartbeatTTL >= guaranteed, heartbeatTTL >= .seconds(2) else {
            throw ConfigurationError(
                key: "ORCH_HEARTBEAT_TTL",
                problem:
                    "must be at least 3 × ORCH_HEARTBEAT_INTERVAL (\(heartbeatInterval)) and 2s: two beats plus one beat's "
                    + "timeout must fit in it, or one late beat loses every lease")
        }
        electionInterval = try env.duration("ORCH_ELECTION_INTERVAL", default: heartbeatInterval)
        shutdownGrace = try env.duration("ORCH_SHUTDOWN_GRACE", default: .seconds(20))
        jobRetention = try env.duration("ORCH_JOB_RETENTION", default: .seconds(7 * 86400))
        webhookRetention = try env.duration("ORCH_WEBHOOK_RETENTION", default: WebhookStore.defaultRetention)
        guard webhookRetention >= .seconds(3600) else {
            throw ConfigurationError(
                key: "ORCH_WEBHOOK_RETENTION",
                problem: "must be at least 1h: it is also the window in which redeliveries are recognised")
        }
        replicaName = env.string("ORCH_REPLICA_NAME") ?? ProcessInfo.processInfo.hostName
        diagnosticJobs = try env.flag("ORCH_DIAGNOSTIC_JOBS", default: false)
        let level = env.string("ORCH_LOG_LEVEL") ?? "info"
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw ConfigurationError(
                key: "ORCH_LOG_LEVEL",
                problem: "expected trace, debug, info, notice, warning, error or critical, got '\(level)'")
        }
        logLevel = parsed
        planeWebhookSecret = environment["ORCH_PLANE_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        giteaWebhookSecret = environment["ORCH_GITEA_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        insecureWebhooks = try env.flag("ORCH_INSECURE_WEBHOOKS", default: false)
        metricsPublic = try env.flag("ORCH_METRICS_PUBLIC", default: false)
        reaperEnabled = try env.flag("ORCH_REAPER_ENABLED", default: true)
        worktreeRetention = try env.duration("ORCH_WORKTREE_RETENTION", default: .seconds(7 * 86400))
        agentLogRetention = try env.duration("ORCH_AGENT_LOG_RETENTION", default: .seconds(14 * 86400))
        lessons = LessonJournal.Settings(
            enabled: try env.flag("ORCH_LESSONS_ENABLED", default: true),
            dedupWindow: try env.duration("ORCH_LESSONS_DEDUP_WINDOW", default: .seconds(3600)))
        reconcileEnabled = try env.flag("ORCH_RECONCILE_ENABLED", default: true)
        reconcileInterval = try env.duration("ORCH_RECONCILE_INTERVAL", default: .seconds(60))
        guard reconcileInterval >= .seconds(1) else {
            throw ConfigurationError(
                key: "ORCH_RECONCILE_INTERVAL", problem: "must be at least 1s: each pass scans the tasks table")
        }
        planeAPI = try Self.planeAPI(env)
        giteaAPI = try env.group(["ORCH_GITEA_API_URL", "ORCH_GITEA_TOKEN"]).map {
            GiteaSettings(baseURL: try env.httpURL("ORCH_GITEA_API_URL", $0[0]), token: $0[1])
        }
        telegram = try env.group(["ORCH_TELEGRAM_BOT_TOKEN", "ORCH_TELEGRAM_CHAT_ID"]).map {
            TelegramSettings(
                apiURL: try env.httpURL(
                    "ORCH_TELEGRAM_API_URL", env.string("ORCH_TELEGRAM_API_URL") ?? "https://api.telegram.org"),
                token: $0[0], chatID: $0[1])
        }
        workdir = env.string("ORCH_WORKDIR") ?? FileManager.default.currentDirectoryPath + "/.orchestrator"
        diskMonitorEnabled = try env.flag("ORCH_DISK_MONITOR_ENABLED", default: true)
        let diskPaths = env.list("ORCH_DISK_MONITOR_PATHS") ?? [workdir]
        if diskMonitorEnabled, diskPaths.isEmpty {
            throw ConfigurationError(key: "ORCH_DISK_MONITOR_PATHS", problem: "names no path")
        }
        diskMonitor = DiskMonitor.Settings(
            paths: diskPaths, threshold: try env.number("ORCH_DISK_MONITOR_THRESHOLD", default: 90, range: 1...100),
            interval: try env.duration("ORCH_DISK_MONITOR_INTERVAL", default: .seconds(60)))
        buildCachePruneEnabled = try env.flag("ORCH_BUILD_CACHE_PRUNE_ENABLED", default: false)
        let pruneCommand = try env.argv("ORCH_BUILD_CACHE_PRUNE_COMMAND") ?? []
        if buildCachePruneEnabled, pruneCommand.isEmpty {
            throw ConfigurationError(
                key: "ORCH_BUILD_CACHE_PRUNE_COMMAND",
                problem: "must be set when ORCH_BUILD_CACHE_PRUNE_ENABLED is on (e.g. docker builder prune -af)")
        }
        buildCachePrune = BuildCachePruner.Settings(
            command: pruneCommand,
            interval: try env.duration("ORCH_BUILD_CACHE_PRUNE_INTERVAL", default: .seconds(86400)),
            timeout: try env.duration("ORCH_BUILD_CACHE_PRUNE_TIMEOUT", default: .seconds(600)))
        agentLogMaxBytes = try env.integer(
            "ORCH_AGENT_LOG_MAX_BYTES", default: AgentLauncher.Settings.defaultMaxLogBytes,
            range: (64 << 10)...(1 << 40))
        breaker = BreakerSettings(
            enabled: try env.flag("ORCH_RESILIENCE_ENABLED", default: true),
            threshold: try env.integer("ORCH_BREAKER_THRESHOLD", default: 3, range: 1...1000),
            window: try env.duration("ORCH_BREAKER_WINDOW", default: .seconds(300)),
            cooldown: try env.duration("ORCH_BREAKER_COOLDOWN", default: .seconds(120)))
        ciPollInterval = try env.duration("ORCH_CI_POLL_INTERVAL", default: .seconds(30))
        gates = GateSwitches(
            mergeGate: try env.flag("ORCH_MERGE_GATE_ENABLED", default: true),
            serialGate: try env.flag("ORCH_SERIAL_GATE_ENABLED", default: true),
            taskDependencies: try env.flag("ORCH_TASK_DEPS_ENABLED", default: true),
            coverageGate: try env.flag("ORCH_COVERAGE_GATE_ENABLED", default: true),
            postDeploy: try env.flag("ORCH_POST_DEPLOY_ENABLED", default: true))
        promptsDirectory =
            env.string("ORCH_PROMPTS_DIR")
            ?? (FileManager.default.fileExists(atPath: "prompts/analysis.md")
                ? FileManager.default.currentDirectoryPath + "/prompts" : nil)
        webhookMaxBodyBytes = try env.integer("ORCH_WEBHOOK_MAX_BODY", default: 1 << 20, range: 1024...(64 << 20))
        adminToken = environment["ORCH_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        file = try env.string("ORCH_CONFIG").map(ConfigFile.load(path:)) ?? ConfigFile()
        file.labels.enabled = try env.flag("ORCH_AUTO_LABELS_ENABLED", default: true)
        fsNormalizeEnabled = try env.flag("ORCH_FS_NORMALIZE_ENABLED", default: true)
        fsNormalize = FileOwnershipCheck.Settings(
            workdir: workdir,
            maxEntries: try env.integer("ORCH_FS_NORMALIZE_MAX_ENTRIES", default: 100_000, range: 1...100_000_000),
            ttl: try env.duration("ORCH_FS_NORMALIZE_TTL", default: .seconds(300)),
            chown: try env.flag("ORCH_FS_NORMALIZE_CHOWN", default: false),
            // A worktree is an agent's user's during its run, and a task's home stays its.
            agentUIDs: Set(file.agents.values.compactMap { $0.identity?.userID }))
        try Self.applyGateLists(env, to: &file.repos)
    }

    /// The serial gate's limit per configured repository: nil (no limit) with the gate switched
    /// off or the repository out of its scope.
    var serialGateLimits: [String: Int?] {
        Dictionary(
            file.repos.map { ($0.repo, gates.applies(.serialGate, to: $0) ? $0.gates.maxActiveTasks : nil) },
            uniquingKeysWith: { first, _ in first })
    }

    /// `ORCH_<GATE>_REPOS` (e.g. `ORCH_COVERAGE_GATE_REPOS=acme/api,acme/web`): when set, the gate
    /// applies only to the repositories listed (and not switched off in their own `gates`); unset
    /// or empty, to all. A name that is not a configured repository stops the start: a typo must
    /// not silently take a repository out of a gate.
    static func applyGateLists(_ env: EnvironmentReader, to repos: inout [RepositorySettings]) throws {
        let configured = Set(repos.map(\.repo))
        for gate in RepositoryGate.allCases {
            guard let listed = env.list(gate.repositoryListVariable), !listed.isEmpty else { continue }
            if let unknown = listed.first(where: { !configured.contains($0) }) {
                throw ConfigurationError(
                    key: gate.repositoryListVariable,
                    problem: "names \(unknown.prefix(100)), which is not a repository of ORCH_CONFIG")
            }
            for index in repos.indices where !listed.contains(repos[index].repo) {
                repos[index].gates.outOfScope.insert(gate)
            }
        }
    }

    private static func planeAPI(_ env: EnvironmentReader) throws -> PlaneAPISettings? {
        guard let values = try env.group(["ORCH_PLANE_API_URL", "ORCH_PLANE_API_KEY", "ORCH_PLANE_WORKSPACE"]) else {
            return nil
        }
        return PlaneAPISettings(
            baseURL: try env.httpURL("ORCH_PLANE_API_URL", values[0]), apiKey: values[1], workspace: values[2])
    }

    /// Every secret value of the configuration, for `SecretRedactor`: tokens, keys, webhook
    /// secrets and the database password.
    var secrets: [String?] {
        [adminToken, planeWebhookSecret, giteaWebhookSecret, planeAPI?.apiKey, giteaAPI?.token, telegram?.token]
            + SecretRedactor.databasePasswords(databaseURL)
    }

    /// The configured webhook secret of a source.
    func webhookSecret(for source: WebhookSource) -> String? {
        switch source {
        case .plane: return planeWebhookSecret
        case .gitea: return giteaWebhookSecret
        }
    }

    /// The pool settings for this process.
    /// How long one heartbeat statement may take (its own session's `statement_timeout`): a third
    /// of the TTL, at most one interval.
    static func heartbeatTimeout(interval: Duration, ttl: Duration) -> Duration {
        max(.milliseconds(500), min(interval, ttl / 3))
    }

    /// The heartbeat's statement timeout for this configuration.
    var heartbeatTimeout: Duration { Self.heartbeatTimeout(interval: heartbeatInterval, ttl: heartbeatTTL) }

    func database(applicationName: String) -> DatabaseConfiguration {
        DatabaseConfiguration(connectionString: databaseURL, applicationName: applicationName, maxConnections: poolSize)
    }
}
