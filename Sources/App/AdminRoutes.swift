import COpenSSL
import Foundation
import Hummingbird
import Store
import Workers

/// The admin API (DESIGN §3): every route needs `Authorization: Bearer $ORCH_ADMIN_TOKEN`.
/// Without a configured token the routes answer 503: the API is never open by default.
struct AdminRoutes: Sendable {
    let pool: ConnectionPool
    let configuration: AppConfiguration

    private var tasks: TaskStore { TaskStore(pool: pool) }
    var jobs: JobStore { JobStore(pool: pool) }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/status") { request, context in
            await admin(request, context) { try await status() }
        }
        router.get("/queue") { request, context in
            await admin(request, context) { try await queue() }
        }
        router.get("/tasks/:work_item") { request, context in
            await admin(request, context) { try await task(context.parameters.get("work_item") ?? "") }
        }
        router.post("/tasks/:work_item/approve") { request, context in
            await admin(request, context) {
                // `?stage=` binds the approval to the stage the operator looked at: refused (409) if
                // the task awaits approval of another one by now. Without it, whatever awaits.
                guard let name = request.uri.queryParameters.get("stage") else {
                    return try await apply(.approved, to: context.parameters.get("work_item") ?? "")
                }
                guard let stage = TaskStage(rawValue: name) else {
                    let stages = TaskStage.allCases.map(\.rawValue).joined(separator: ", ")
                    return json(ErrorBody("unknown stage '\(name.prefix(64))' (one of \(stages))"), status: .badRequest)
                }
                return try await apply(.approvedStage(stage, visit: nil), to: context.parameters.get("work_item") ?? "")
            }
        }
        for (action, event) in [("retry", TaskEvent.retry), ("cancel", .cancel)] {
            router.post("/tasks/:work_item/\(action)") { request, context in
                await admin(request, context) { try await apply(event, to: context.parameters.get("work_item") ?? "") }
            }
        }
        registerLessons(on: router)
        registerMetrics(on: router)
        router.post("/bug-fast-track/escalate") { request, context in
            await admin(request, context) {
                guard let workItem = request.uri.queryParameters.get("work_item"), !workItem.isEmpty else {
                    return json(ErrorBody("missing 'work_item'"), status: .badRequest)
                }
                return try await apply(.escalate, to: workItem)
            }
        }
    }

    // MARK: Auth and errors

    func admin(_ request: Request, _ context: BasicRequestContext, _ body: () async throws -> Response) async -> Response {
        guard let token = configuration.adminToken else {
            return json(ErrorBody("admin API disabled: set ORCH_ADMIN_TOKEN"), status: .serviceUnavailable)
        }
        let header = request.header(named: "Authorization") ?? ""
        guard header.hasPrefix("Bearer "), Self.constantTimeEqual(String(header.dropFirst("Bearer ".count)), token) else {
            return json(ErrorBody("missing or invalid bearer token"), status: .unauthorized)
        }
        do {
            return try await body()
        } catch let error as PostgresError where error.isConnectionLost || error.kind == .poolTimeout {
            return json(ErrorBody("database unavailable"), status: .serviceUnavailable)
        } catch {
            context.logger.error("admin request failed", metadata: ["error": "\(error)"])
            return json(ErrorBody("internal error"), status: .internalServerError)
        }
    }

    static func constantTimeEqual(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
    }

    // MARK: Bodies

    struct TaskBody: Encodable {
        let work_item: String
        let repo: String?
        let title: String
        let stage: String
        let status: String
        let track: String
        let auto: Bool
        let labels: [String]
        let pr_number: Int?
        let head_sha: String?
        let merge_sha: String?
        let head_ci_state: String?
        let merge_ci_state: String?
        let created_at: String
        let updated_at: String

        init(_ task: TaskRecord) {
            work_item = task.workItem
            repo = task.repo
            title = task.title
            stage = task.state.stage.rawValue
            status = task.state.status.rawValue
            track = task.state.track.rawValue
            auto = task.state.auto
            labels = task.labels
            pr_number = task.prNumber
            head_sha = task.headSHA
            merge_sha = task.mergeSHA
            head_ci_state = task.headCIState
            merge_ci_state = task.mergeCIState
            created_at = iso(task.createdAt)
            updated_at = iso(task.updatedAt)
        }
    }

    struct JobBody: Encodable {
        let id: Int64
        let kind: String
        let queue: String
        let status: String
        let attempt: Int
        let max_attempts: Int
        let last_error: String?
        let locked_by: String?
        let created_at: String
        let finished_at: String?

        init(_ job: Job) {
            id = job.id
            kind = job.kind
            queue = job.queue
            status = job.status.rawValue
            attempt = job.attempt
            max_attempts = job.maxAttempts
            last_error = job.lastError
            locked_by = job.lockedBy
            created_at = iso(job.createdAt)
            finished_at = job.finishedAt.map(iso)
        }
    }

    private func status() async throws -> Response {
        struct Body: Encodable { let active_tasks: [TaskBody] }
        return json(Body(active_tasks: try await tasks.notDone(limit: 10).map(TaskBody.init)))
    }

    private func queue() async throws -> Response {
        struct ReplicaBody: Encodable {
            let id: String
            let name: String
            let host: String
            let pid: Int
            let role: String
            let leader: Bool
            let heartbeat_age_seconds: Double
            let started_at: String
        }
        struct DutyBody: Encodable {
            let replica: String
            let last_run_at: String
            let last_affected: Int
            let total_affected: Int
            let runs: Int
            let last_error: String?
        }
        struct ReaperBody: Encodable {
            let enabled: Bool
            let scope = "all"
            let leader: String?
            let heartbeat_ttl_seconds: Double
            let job_retention_hours: Double
            let duties: [String: DutyBody]
        }
        struct LessonsBody: Encodable {
            let scope = "all"
            let by_status: [String: Int]
            let by_type: [String: Int]
            let last_at: String?
        }
        struct WebhooksBody: Encodable {
            let deliveries: [String: Int]
            let plane_secret_set: Bool
            let gitea_secret_set: Bool
            let insecure: Bool
            let max_body_bytes: Int
        }
        struct Cancellation: Encodable {
            let work_item: String
            let actor: String
            let reason: String?
            let at: String
        }
        struct StopBody: Encodable {
            let label: String
            let scope = "all"
            let cancelled_tasks: Int
            let cancelled_stage_jobs: Int
            /// Merges running for cancelled tasks: the cancel takes effect when they finish.
            let deferred: Int
            let recent: [Cancellation]
        }
        struct BugFastTrackBody: Encodable {
            let label: String
            let scope = "all"
            let tasks: [String: Int]
            let architecture_skipped: Int
            let escalated: Int
        }
        struct ResilienceBody: Encodable {
            let enabled: Bool
            let scope = "all"
            let breaker: String
            let state: String
            let open_until: String?
            let failures_in_window: Int
            let threshold: Int
            let window_seconds: Double
            let cooldown_seconds: Double
            let opened_count: Int
            let last_reason: String?
            let postponed_jobs: Int
        }
        struct Body: Encodable {
            let counts: [String: Int]
            let max_concurrency: Int
            let poll_interval: Double
            let replicas: [ReplicaBody]
            let leader: String?
            let resilience: ResilienceBody
            let stop: StopBody
            let bug_fast_track: BugFastTrackBody
            let reaper: ReaperBody
            let lessons: LessonsBody
            let webhooks: WebhooksBody
            let recent: [JobBody]
        }
        let counts = try await jobs.countsByStatus()
        let replicas = try await ReplicaStore(pool: pool).live()
        let leader = replicas.first { $0.leaderSince != nil }?.id
        let duties = try await MaintenanceStore(pool: pool).runs()
        let lessons = try await LessonStore(pool: pool).summary()
        let stop = try await tasks.stopSummary(recent: 10)
        let bugs = try await tasks.bugTrackSummary()
        let breaker = try await CircuitBreakerStore(pool: pool).state(name: BreakerSettings.name)
        let settings = configuration.breaker
        return json(Body(
            counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            max_concurrency: configuration.maxConcurrency, poll_interval: configuration.pollInterval.seconds,
            replicas: replicas.map {
                ReplicaBody(id: $0.id, name: $0.name, host: $0.host, pid: $0.pid, role: $0.role, leader: $0.leaderSince != nil,
                            heartbeat_age_seconds: rounded($0.heartbeatAgeSeconds, places: 3), started_at: iso($0.startedAt))
            },
            leader: leader,
            resilience: ResilienceBody(
                enabled: settings.enabled, breaker: BreakerSettings.name, state: breaker.isOpen ? "open" : "closed",
                open_until: breaker.isOpen ? breaker.openUntil.map(iso) : nil, failures_in_window: breaker.failures,
                threshold: settings.threshold, window_seconds: settings.window.seconds, cooldown_seconds: settings.cooldown.seconds,
                opened_count: breaker.openedCount, last_reason: breaker.lastReason,
                postponed_jobs: try await jobs.countPostponed(kind: TaskStore.stageJobKind, reasonPrefix: BreakerSettings.postponeReason)),
            stop: StopBody(
                label: configuration.file.labels.stop, cancelled_tasks: stop.tasks, cancelled_stage_jobs: stop.jobs, deferred: stop.deferred,
                recent: stop.recent.map { Cancellation(work_item: $0.workItem, actor: $0.actor, reason: $0.reason, at: iso($0.at)) }),
            bug_fast_track: BugFastTrackBody(
                label: configuration.file.labels.bug, tasks: bugs.byStatus, architecture_skipped: bugs.architectureSkipped, escalated: bugs.escalated),
            reaper: ReaperBody(
                enabled: configuration.reaperEnabled, leader: leader, heartbeat_ttl_seconds: configuration.heartbeatTTL.seconds,
                job_retention_hours: configuration.jobRetention.seconds / 3600,
                duties: Dictionary(uniqueKeysWithValues: duties.map {
                    ($0.duty, DutyBody(replica: $0.replicaID, last_run_at: iso($0.lastRunAt), last_affected: $0.lastAffected,
                                       total_affected: $0.totalAffected, runs: $0.runs, last_error: $0.lastError))
                })),
            lessons: LessonsBody(by_status: lessons.byStatus, by_type: lessons.byType, last_at: lessons.lastAt.map(iso)),
            webhooks: WebhooksBody(
                deliveries: try await WebhookStore(pool: pool).counts(),
                plane_secret_set: configuration.webhookSecret(for: .plane) != nil,
                gitea_secret_set: configuration.webhookSecret(for: .gitea) != nil,
                insecure: configuration.insecureWebhooks, max_body_bytes: configuration.webhookMaxBodyBytes),
            recent: try await jobs.recent(limit: 10).map(JobBody.init)))
    }

    private func task(_ workItem: String) async throws -> Response {
        struct HistoryBody: Encodable {
            let event: String
            let from_stage: String
            let to_stage: String
            let from_status: String
            let to_status: String
            let reason: String?
            let actor: String
            let at: String
        }
        struct RunBody: Encodable {
            let id: Int64
            let stage: String?
            let role: String
            let replica: String
            let pid: Int?
            let started_at: String
            let ended_at: String?
            let exit_code: Int?
            let timed_out: Bool
            let cost_usd: Double?
            let input_tokens: Int?
            let output_tokens: Int?
            let model: String?
            let log_path: String?
            let error: String?
        }
        struct StageCost: Encodable {
            let stage: String
            let runs: Int
            let cost_usd: Double
            let input_tokens: Int
            let output_tokens: Int
        }
        struct Body: Encodable {
            let task: TaskBody
            let history: [HistoryBody]
            let jobs: [JobBody]
            let agent_runs: [RunBody]
            let cost_by_stage: [StageCost]
            let cost_usd: Double
        }
        guard let task = try await tasks.task(workItem: workItem) else {
            return json(ErrorBody("unknown task '\(workItem.prefix(64))'"), status: .notFound)
        }
        let history = try await tasks.history(workItem: workItem).map {
            HistoryBody(event: $0.event, from_stage: $0.fromStage, to_stage: $0.toStage, from_status: $0.fromStatus,
                        to_status: $0.toStatus, reason: $0.reason, actor: $0.actor, at: iso($0.at))
        }
        let agentRuns = AgentRunStore(pool: pool)
        let costs = try await agentRuns.costByStage(workItem: workItem).map {
            StageCost(stage: $0.stage, runs: $0.runs, cost_usd: rounded($0.costUSD, places: 6), input_tokens: $0.input, output_tokens: $0.output)
        }
        return json(Body(
            task: TaskBody(task), history: history, jobs: try await jobs.jobs(workItem: workItem).map(JobBody.init),
            agent_runs: try await agentRuns.runs(workItem: workItem).map {
                RunBody(id: $0.id, stage: $0.stage, role: $0.role, replica: $0.replicaID, pid: $0.pid, started_at: iso($0.startedAt),
                        ended_at: $0.endedAt.map(iso), exit_code: $0.exitCode, timed_out: $0.timedOut, cost_usd: $0.usage.costUSD,
                        input_tokens: $0.usage.inputTokens, output_tokens: $0.usage.outputTokens, model: $0.usage.model,
                        log_path: $0.logPath, error: $0.error)
            },
            cost_by_stage: costs, cost_usd: rounded(costs.reduce(0) { $0 + $1.cost_usd }, places: 6)))
    }

    private func apply(_ event: TaskEvent, to workItem: String) async throws -> Response {
        struct Body: Encodable {
            let ok = true
            let task: TaskBody
        }
        do {
            guard let task = try await tasks.apply(event, workItem: workItem, actor: "admin", reason: "admin API") else {
                return json(ErrorBody("unknown task '\(workItem.prefix(64))'"), status: .notFound)
            }
            return json(Body(task: TaskBody(task)))
        } catch let error as IllegalTransition {
            return json(ErrorBody(error.description), status: .conflict)
        }
    }
}

/// ISO 8601 with milliseconds, UTC.
/// `value` rounded to `places` decimals, for JSON figures (seconds to the millisecond, USD to the
/// micro-dollar).
func rounded(_ value: Double, places: Int) -> Double {
    let scale = [1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0, 1_000_000.0][places]
    return (value * scale).rounded() / scale
}

func iso(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}
