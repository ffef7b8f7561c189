/// One CI context that failed on a commit, as Gitea reported it: what a developer agent needs to
/// find the failure (the context's name, its description, the link to the CI run).
public struct FailedCheck: Sendable, Equatable {
    /// The status context, e.g. `ci/build`.
    public var context: String
    /// `failure` or `error`.
    public var state: String
    public var description: String?
    public var targetURL: String?

    public init(context: String, state: String, description: String?, targetURL: String?) {
        self.context = context
        self.state = state
        self.description = description
        self.targetURL = targetURL
    }

    /// The feedback a development stage gets for red CI on `sha`: one line per failed context.
    public static func feedback(_ checks: [FailedCheck], sha: String, round: Int, of rounds: Int) -> String {
        var lines = [
            "CI failed on the pull request's head \(sha.prefix(12)) (CI fix round \(round) of \(rounds)). "
                + "Fix what these checks report, then make sure the tests pass:"
        ]
        if checks.isEmpty { lines.append("- (Gitea listed no failed context; see the commit's statuses)") }
        for check in checks {
            var line = "- \(check.context): \(check.state)"
            if let description = check.description, !description.isEmpty { line += " — \(description)" }
            if let url = check.targetURL, !url.isEmpty { line += " (\(url))" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
