import Foundation
import Logging
import Store

#if canImport(Glibc)
import Glibc
#endif

/// Starts agent processes: argv from the configuration (never a shell), the prompt on
/// stdin only, a scrubbed environment, a process group of its own, a wall-clock timeout (SIGTERM
/// to the group, then SIGKILL after a grace period) and a stall timeout (the same, once it has
/// printed nothing for that long), stdout and stderr in a per-run log file, and an `agent_runs`
/// row with exit status, tokens and cost.
public struct AgentLauncher: Sendable {
    /// Launcher settings.
    public struct Settings: Sendable {
        /// Where per-run logs go.
        public var logDirectory: String
        public var replicaID: String
        public var host: String
        /// Between SIGTERM and SIGKILL on a timeout.
        public var terminationGrace: Duration
        /// The most one run's log holds (plus the "… N bytes omitted …" marker): its first
        /// `maxLogBytes - logTailBytes` bytes as they come, and its last `logTailBytes` at the end.
        public var maxLogBytes: Int
        /// The agents by role, for the user each runs as (`AgentCommand.identity`; a role without
        /// its own entry uses `default`'s, as the stage runner picks the command).
        public var agents: [String: AgentCommand]

        /// The default cap of one run's log.
        public static let defaultMaxLogBytes = 50 << 20

        /// Creates settings.
        public init(
            logDirectory: String, replicaID: String, host: String, terminationGrace: Duration = .seconds(5),
            maxLogBytes: Int = defaultMaxLogBytes,
            agents: [String: AgentCommand] = [:]
        ) {
            self.logDirectory = logDirectory
            self.replicaID = replicaID
            self.host = host
            self.terminationGrace = terminationGrace
            self.maxLogBytes = maxLogBytes
            self.agents = agents
        }

        /// The end of a log kept when it overflows: half the cap, at most 4 MiB (held in memory
        /// while the agent runs), and the agent's result, its last line, is in it.
        public var logTailBytes: Int { min(maxLogBytes / 2, 4 << 20) }

        /// The user an agent of `role` runs as, if not the orchestrator's.
        func identity(role: String) -> ChildIdentity? { (agents[role] ?? agents["default"])?.identity }
    }

    /// One agent run to start.
    public struct Request: Sendable {
        public var command: [String]
        public var timeout: Duration
        /// Stop the agent once it has printed nothing (stdout or stderr) for this long; nil: never.
        public var stallTimeout: Duration?
        /// The run whose session `command` resumes, if it does.
        public var resumedFrom: Int64?
        /// Why the run starts a fresh session although one could have been resumed.
        public var resumeNote: String?
        /// How the result is read from the output.
        public var format: any AgentOutputFormat = AgentOutputFormats.standard
        /// Which of the role's runners this is (0: the first).
        public var runner = 0
        /// Appended to `command`, whichever runner and session it is (the budget's arguments).
        public var trailingArguments: [String] = []
        /// Reaches the agent on stdin only.
        public var prompt: String
        public var directory: String
        /// Task variables for the agent (`ORCH_WORK_ITEM`, `ORCH_STAGE`, …); only `ORCH_*` names.
        public var variables: [String: String]
        public var workItem: String?
        public var jobID: Int64?
        public var stage: String?
        public var role: String
        /// The replica id the run is recorded under: the holder of the job's lease (a replica
        /// that registered again runs under its new id); the launcher's own when nil.
        public var replicaID: String?

        public init(
            command: [String], timeout: Duration, prompt: String, directory: String, variables: [String: String],
            workItem: String?, jobID: Int64?, stage: String?, role: String, replicaID: String? = nil,
            stallTimeout: Duration? = nil
        ) {
            self.replicaID = replicaID
            self.stallTimeout = stallTimeout
            self.command = command
            self.timeout = timeout
            self.prompt = prompt
            self.directory = directory
            self.variables = variables
            self.workItem = workItem
            self.jobID = jobID
            self.stage = stage
            self.role = role
        }
    }

    /// How a run ended.
    public struct Outcome: Sendable {
        public let runID: Int64
        /// The exit status, or 128 + signal.
        public let exitCode: Int
        public let timedOut: Bool
        /// Stopped because it printed nothing for its stall timeout.
        public var stalled = false
        /// Stopped because the caller's task was cancelled (STOP, shutdown).
        public let cancelled: Bool
        /// From the agent's JSON result; nil for a plain-text agent.
        public let usage: AgentUsage?
        public let logPath: String

        /// Exited 0, in time, and did not report an error.
        public var succeeded: Bool { exitCode == 0 && !timedOut && !stalled && !cancelled && usage?.isError != true }
    }

    /// Environment variables an agent inherits from the orchestrator; everything else (database
    /// URL, admin token, webhook secrets, API keys) stays out.
    /// (`HOME` and `XDG_CONFIG_HOME` are then pointed at the task's own home, `TaskHome`.)
    public static let inheritedEnvironment: Set<String> = [
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR",
        "XDG_CONFIG_HOME",
    ]

    let settings: Settings
    let runs: AgentRunStore
    let events: RunEventRecorder
    let logger: Logger

    public init(settings: Settings, pool: ConnectionPool, logger: Logger) {
        self.settings = settings
        self.runs = AgentRunStore(pool: pool)
        self.events = RunEventRecorder(store: AgentRunEventStore(pool: pool), logger: logger)
        self.logger = logger
    }

    /// The child's environment: the allowlist from this process plus the task's `ORCH_*` variables,
    /// with `HOME` (and `XDG_CONFIG_HOME`) the task's own, and `USER`/`LOGNAME` the identity's.
    static func environment(
        variables: [String: String], runID: Int64, home: String, identity: ChildIdentity? = nil
    ) -> [String: String] {
        var task = variables.filter { $0.key.hasPrefix("ORCH_") }
        task["ORCH_RUN_ID"] = String(runID)
        task.merge(TaskHome.environment(home: home)) { _, new in new }
        if let identity {
            task["USER"] = identity.userName
            task["LOGNAME"] = identity.userName
        }
        return inheritedEnvironment(adding: task)
    }

    /// The task's home: beside its worktree's (`TaskHome`), else under the log directory's
    /// parent, per work item (or per run without one).
    func home(for request: Request, runID: Int64) -> String {
        if let home = TaskHome.path(forWorktree: request.directory) { return home }
        let root = (settings.logDirectory as NSString).deletingLastPathComponent
        return TaskHome.path(root: root, workItem: request.workItem ?? "run-\(runID)")
    }

    /// The allowlisted part of this process's environment (`inheritedEnvironment`) plus `extra`:
    /// what every child (agent, git, test and deploy commands) starts with.
    static func inheritedEnvironment(adding extra: [String: String]) -> [String: String] {
        ProcessInfo.processInfo.environment.filter { inheritedEnvironment.contains($0.key) }.merging(extra) { _, new in
            new
        }
    }

    /// Runs the agent to its end (exit, timeout or cancellation of the calling task) and records it.
    public func run(_ request: Request) async throws -> Outcome {
        var request = request
        request.command += request.trailingArguments
        request.trailingArguments = []
        // Old logs are the reaper's (`AgentLogRotation`, every replica), not each run's to delete.
        try FileManager.default.createDirectory(atPath: settings.logDirectory, withIntermediateDirectories: true)
        let stamp = Date().formatted(
            Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: false)
        )
        .replacingOccurrences(of: ":", with: "")
        let label = String(
            [request.workItem, request.stage, request.role].compactMap { $0 }.joined(separator: "-")
                .filter { $0.isLetter || $0.isNumber || $0 == "-" })
        let logPath = "\(settings.logDirectory)/\(stamp)-\(label)-\(UUID().uuidString.prefix(8).lowercased()).log"
        let runID = try await runs.begin(
            .init(
                workItem: request.workItem, jobID: request.jobID, stage: request.stage, role: request.role,
                replicaID: request.replicaID ?? settings.replicaID,
                host: settings.host, command: request.command, logPath: logPath, resumedFrom: request.resumedFrom,
                resumeNote: request.resumeNote, runner: request.runner))
        var log = logger
        log[metadataKey: "agent.run"] = "\(runID)"
        log[metadataKey: "agent.role"] = "\(request.role)"

        let identity = settings.identity(role: request.role)
        let home = home(for: request, runID: runID)
        let termination: ChildProcess.Termination
        do {
            try TaskHome.prepare(home, owner: identity)
            // Another user's agent must be able to write its worktree; the orchestrator takes it
            // back below, as its own git refuses a worktree owned by someone else.
            if let identity { try Ownership.change(request.directory, to: identity.userID, identity.groupID) }
            let runs = self.runs
            let startLog = log
            // What it prints is stored as it comes (live output), beside the log file.
            let inbox = RunEventRecorder.Inbox()
            let output = try OutputCapture(
                logPath: logPath, maxBytes: settings.maxLogBytes, tailBytes: settings.logTailBytes,
                onLines: { inbox.add($0) })
            termination = try await withThrowingTaskGroup(of: ChildProcess.Termination?.self) { group in
                group.addTask {
                    await events.record(runID: runID, from: inbox)
                    return nil
                }
                defer { inbox.finish() }
                let ended = try await ChildProcess.run(
                    arguments: request.command,
                    environment: Self.environment(
                        variables: request.variables, runID: runID, home: home, identity: identity),
                    directory: request.directory, output: output,
                    input: request.prompt, timeout: request.timeout, stallTimeout: request.stallTimeout,
                    grace: settings.terminationGrace, identity: identity
                ) { pid in
                    let spawnedAt = Date()
                    try? await runs.started(
                        id: runID, pid: Int(pid), processStart: ProcStat.startTime(pid: Int(pid)), at: spawnedAt)
                    startLog.info("agent started", metadata: ["agent.pid": "\(pid)", "agent.log": "\(logPath)"])
                }
                inbox.finish()
                try await group.waitForAll()
                return ended
            }
            if identity != nil { try Ownership.change(request.directory, to: geteuid(), getegid()) }
        } catch {
            if identity != nil { try? Ownership.change(request.directory, to: geteuid(), getegid()) }
            try? await runs.finish(id: runID, exitCode: -1, timedOut: false, usage: nil, error: "\(error)")
            throw error
        }
        let exitedAt = Date()
        let (exitCode, timedOut, cancelled) = (termination.exitCode, termination.timedOut, termination.cancelled)
        let stalled = termination.stalled

        let usage = AgentResultParser.parse(logPath: logPath, format: request.format)
        let error: String? =
            if timedOut {
                "timed out after \(request.timeout)"
            } else if stalled, let limit = request.stallTimeout {
                "stalled: no output for \(Int(limit.seconds.rounded()))s"
            } else if cancelled {
                "cancelled"
            } else {
                nil
            }
        // Recorded even when the caller was cancelled (STOP): the partial cost must not be lost.
        // The write runs in a task of its own, awaited right here, which the caller's
        // cancellation does not reach.
        let runs = self.runs
        let recorded = await Task {
            do {
                try await runs.finish(
                    id: runID, exitCode: Int(exitCode), timedOut: timedOut, stalled: stalled, usage: usage,
                    error: error, exitedAt: exitedAt)
                return nil as String?
            } catch {
                return "\(error)"
            }
        }.value
        if let recorded { log.error("could not record the agent's end", metadata: ["db.error": "\(recorded)"]) }
        log.info(
            "agent ended",
            metadata: [
                "agent.exit": "\(exitCode)", "agent.timed_out": "\(timedOut)", "agent.stalled": "\(stalled)",
                "agent.cancelled": "\(cancelled)",
                "agent.cost_usd": "\(usage?.costUSD.map { String($0) } ?? "unknown")",
            ])
        return Outcome(
            runID: runID, exitCode: Int(exitCode), timedOut: timedOut, stalled: stalled, cancelled: cancelled,
            usage: usage, logPath: logPath)
    }
}
