import Hummingbird
import Store
import Workers

/// `GET /status`, `GET /tasks/{work_item}`, the operator actions on a task (`approve`, `retry`,
/// `cancel`) and `POST /bug-fast-track/escalate`. Actions go through the task state machine: a
/// state that does not allow one is a 409 with the machine's reason.
struct TaskRoutes: Sendable {
    let pool: ConnectionPool
    /// For each task's spend against them.
    var budgets = BudgetLimits()

    private var tasks: TaskStore { TaskStore(pool: pool) }

    /// Up to 10 tasks not done, newest first.
    struct ActiveTasks: ResponseEncodable {
        let activeTasks: [TaskRecord]
    }

    /// The task after an action.
    struct Applied: ResponseEncodable {
        let ok = true
        let task: TaskRecord
    }

    /// `POST /bug-fast-track/escalate`: the seed's fields (`work_item`, `track`, `was`) and the task.
    struct Escalated: ResponseEncodable {
        let ok = true
        let workItem: String
        let track: String
        let was: String
        let task: TaskRecord
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/status") { _, _ in
            ActiveTasks(activeTasks: try await tasks.notDone(limit: 10))
        }
        routes.get("/tasks/:work_item") { request, context -> Response in
            let workItem = context.parameters.get("work_item") ?? ""
            guard let report = try await TaskReport.read(workItem: workItem, from: pool, budgets: budgets) else {
                throw APIError(.notFound, "unknown task '\(workItem.prefix(64))'")
            }
            return try context.responseEncoder.encode(report, from: request, context: context)
        }
        routes.post("/tasks/:work_item/approve") { request, context in
            try await apply(
                approval(stage: request.uri.queryParameters.get("stage")), to: context.parameters.get("work_item") ?? ""
            )
        }
        routes.post("/tasks/:work_item/retry") { _, context in
            try await apply(.retry, to: context.parameters.get("work_item") ?? "")
        }
        routes.post("/tasks/:work_item/cancel") { _, context in
            try await apply(.cancel, to: context.parameters.get("work_item") ?? "")
        }
        routes.post("/bug-fast-track/escalate") { request, _ in
            guard let workItem = request.uri.queryParameters.get("work_item"), !workItem.isEmpty else {
                throw APIError(.badRequest, "missing 'work_item'")
            }
            let was = try await tasks.task(workItem: workItem)?.state.track
            let applied = try await apply(.escalate, to: workItem)
            return Escalated(
                workItem: workItem, track: applied.task.state.track.rawValue, was: (was ?? .bug).rawValue,
                task: applied.task)
        }
        return routes
    }

    /// `?stage=` binds the approval to the stage the operator looked at: refused (409) if the task
    /// awaits approval of another one by now. Without it, whatever awaits is approved.
    private func approval(stage name: String?) throws -> TaskEvent {
        guard let name else { return .approved }
        guard let stage = TaskStage(rawValue: name) else {
            let stages = TaskStage.allCases.map(\.rawValue).joined(separator: ", ")
            throw APIError(.badRequest, "unknown stage '\(name.prefix(64))' (one of \(stages))")
        }
        return .approvedStage(stage, visit: nil)
    }

    private func apply(_ event: TaskEvent, to workItem: String) async throws -> Applied {
        do {
            guard let task = try await tasks.apply(event, workItem: workItem, actor: "admin", reason: "admin API")
            else {
                throw APIError(.notFound, "unknown task '\(workItem.prefix(64))'")
            }
            return Applied(task: task)
        } catch let error as IllegalTransition {
            throw APIError(.conflict, error.description)
        }
    }
}
