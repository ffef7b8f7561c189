import Hummingbird
import Store
import Workers

/// `POST /tasks/{wi}/dependencies` with `{"depends_on": ["ORCH-1", …]}`: adds edges to what the
/// task waits for (besides its description's `Depends on` lines). A task still in its first stage
/// is blocked until every dependency is done; an edge that would close a cycle is refused and
/// listed in the answer (and told on the task).
struct DependencyRoutes: Sendable {
    let tasks: TaskStore
    /// `ORCH_TASK_DEPS_ENABLED`.
    let enabled: Bool
    /// Repositories out of the gate's scope (`gates: {task_deps: false}`, `ORCH_TASK_DEPS_REPOS`):
    /// their tasks take no edges.
    var outOfScope: Set<String> = []

    struct Body: Decodable {
        let dependsOn: [String]?

        enum CodingKeys: String, CodingKey {
            case dependsOn = "depends_on"
        }
    }

    struct Added: ResponseEncodable {
        let ok = true
        let workItem: String
        let status: String
        let dependsOn: [TaskStore.DependencyEdge]
        let refused: [TaskStore.DependencyRefusal]
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.post("/tasks/:work_item/dependencies") { request, context in
            guard enabled else {
                throw APIError(.conflict, "task dependencies are switched off (ORCH_TASK_DEPS_ENABLED=0)")
            }
            let workItem = context.parameters.get("work_item") ?? ""
            guard let body = await request.decodeJSONBody(Body.self), let dependsOn = body.dependsOn,
                !dependsOn.isEmpty
            else {
                throw APIError(.badRequest, "missing 'depends_on' (a JSON list of work items)")
            }
            if let bad = dependsOn.first(where: { DependencyLines.parse("Depends on \($0)") != [$0] }) {
                throw APIError(.badRequest, "'\(bad.prefix(64))' is not a work item such as ORCH-12")
            }
            if let repo = try await tasks.task(workItem: workItem)?.repo, outOfScope.contains(repo) {
                throw APIError(
                    .conflict, "task dependencies do not apply to \(repo) (ORCH_TASK_DEPS_REPOS or its gates)")
            }
            guard let (task, refused) = try await tasks.addDependencies(workItem: workItem, dependsOn: dependsOn)
            else {
                throw APIError(.notFound, "unknown task '\(workItem.prefix(64))'")
            }
            return try context.responseEncoder.encode(
                Added(
                    workItem: workItem, status: task.state.status.rawValue,
                    dependsOn: try await tasks.dependencies(workItem: workItem), refused: refused),
                from: request, context: context)
        }
        return routes
    }
}
