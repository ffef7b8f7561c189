import Hummingbird
import Store
import Workers

/// `POST /serial-gate/unfreeze?repo=`: clears a repository's freeze (a red merge commit or a
/// degraded deploy set it) and starts the tasks that were waiting for it. Idempotent: a
/// repository that is not frozen answers `cleared: 0`. The unfreeze is announced on Telegram.
struct SerialGateRoutes: Sendable {
    let tasks: TaskStore
    let alerts: Alerts

    /// The seed's body.
    struct Unfrozen: ResponseEncodable {
        let ok = true
        let repo: String
        let cleared: Int
        let frozen = false
        /// The tasks the unfreeze started.
        let started: [String]
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.post("/serial-gate/unfreeze") { request, context in
            guard let repo = request.uri.queryParameters.get("repo"), !repo.isEmpty else {
                throw APIError(.badRequest, "missing 'repo'")
            }
            let repoName = String(repo)
            let (cleared, started) = try await tasks.unfreeze(repo: repoName)
            if cleared > 0 {
                context.logger.notice(
                    "repository unfrozen", metadata: ["repo": "\(repoName)", "tasks.started": "\(started)"])
                await alerts.raise(
                    "\(repoName) unfrozen by an operator"
                        + (started.isEmpty ? "" : "; started \(started.joined(separator: ", "))"),
                    key: "unfreeze:\(repoName):\(started.joined(separator: ","))")
            }
            return try context.responseEncoder.encode(
                Unfrozen(repo: repoName, cleared: cleared, started: started), from: request, context: context)
        }
        return routes
    }
}
