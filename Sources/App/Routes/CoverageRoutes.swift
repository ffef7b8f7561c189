import Hummingbird
import Store

/// `POST /coverage/baseline?repo=&value=`: an operator sets a repository's coverage baseline to
/// any percentage, lower too (say after deleting dead code with its tests); merges only ever raise
/// it. Only a configured repository's: a typo must not plant a baseline nothing reads.
struct CoverageRoutes: Sendable {
    let coverage: CoverageStore
    /// The configured repositories (`repos[].repo`).
    let repos: Set<String>

    /// The baseline as set.
    struct BaselineSet: ResponseEncodable {
        let ok = true
        let repo: String
        let baseline: Double
    }

    var endpoints: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.post("/coverage/baseline") { request, _ in
            let query = request.uri.queryParameters
            guard let repo = query.get("repo"), !repo.isEmpty else { throw APIError(.badRequest, "missing 'repo'") }
            guard let text = query.get("value"), !text.isEmpty else {
                throw APIError(.badRequest, "missing 'value'")
            }
            guard let value = Double(text), (0...100).contains(value) else {
                throw APIError(.badRequest, "'value' must be a percentage from 0 to 100, got '\(text.prefix(40))'")
            }
            guard repos.contains(repo) else {
                throw APIError(.notFound, "unknown repository '\(repo.prefix(100))' (not in ORCH_CONFIG repos)")
            }
            let baseline = try await coverage.setBaseline(repo: repo, value: value)
            return BaselineSet(repo: baseline.repo, baseline: baseline.baseline)
        }
        return routes
    }
}
