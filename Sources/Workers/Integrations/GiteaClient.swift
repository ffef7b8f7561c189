import Foundation
import Store

/// Where the Gitea REST API is (`ORCH_GITEA_API_URL`, `ORCH_GITEA_TOKEN`).
public struct GiteaSettings: Sendable, Equatable {
    /// The server's base URL; the client appends `/api/v1/repos/<owner>/<repo>/…`.
    public var baseURL: URL
    /// Sent as `Authorization: token …`.
    public var token: String

    /// Creates settings.
    public init(baseURL: URL, token: String) {
        self.baseURL = baseURL
        self.token = token
    }
}

/// A Gitea API call that failed; retryable for network errors, 429 and 5xx.
public struct GiteaAPIError: RetryClassifiedError, CustomStringConvertible {
    public let description: String
    public let isRetryable: Bool

    public init(description: String, isRetryable: Bool) {
        self.description = description
        self.isRetryable = isRetryable
    }
}

/// The Gitea REST calls of the pipeline: open (or find) the task's pull request, read it and a
/// commit's combined status, merge with the head the orchestrator checked.
struct GiteaClient: GiteaAPI {
    let settings: GiteaSettings

    private func url(_ repo: String, _ path: String) -> URL {
        settings.baseURL.appendingPathComponent("api/v1/repos/\(repo)/\(path)")
    }

    private func call(_ method: String, _ url: URL, json: Any? = nil) async throws -> (Int, Any?) {
        let (status, data) = try await OutboundHTTP.send(
            method, url, headers: ["Authorization": "token \(settings.token)"], json: json)
        return (status, try? JSONSerialization.jsonObject(with: data))
    }

    private func failure(_ what: String, _ status: Int, _ body: Any?) -> GiteaAPIError {
        let message = (body as? [String: Any])?["message"] as? String ?? ""
        return GiteaAPIError(
            description: "Gitea \(what) answered \(status) \(message.prefix(200))",
            isRetryable: status == 429 || status >= 500 || status == 0)
    }

    /// Gitea's largest page (its default `MAX_RESPONSE_ITEMS`).
    static let pageSize = 50
    /// How many pages of open pull requests are searched (5,000 PRs) before giving up.
    static let maximumPages = 100

    /// The open pull request from `head` into `base`, opened now if there is none.
    func openOrFindPullRequest(
        repo: String, head: String, base: String, title: String, body: String
    ) async throws -> (number: Int, headSHA: String) {
        let (status, created) = try await call(
            "POST", url(repo, "pulls"), json: ["head": head, "base": base, "title": title, "body": body])
        if status == 201, let pull = created as? [String: Any],
            let number = (pull["number"] as? NSNumber)?.intValue
        {
            return (number, ((pull["head"] as? [String: Any])?["sha"] as? String) ?? "")
        }
        guard status == 409 || status == 422 else { throw failure("opening a pull request", status, created) }
        // It exists already (a retried job, or a later development round): find it.
        if let found = try await findOpenPullRequest(repo: repo, head: head, base: base) { return found }
        throw GiteaAPIError(
            description: "Gitea refused a pull request from \(head) but has none open", isRetryable: true)
    }

    /// The open pull request from branch `head` of `repo` itself into `base`, searched page by
    /// page. A fork's pull request from a branch of the same name is not ours: the head repository
    /// must be `repo`.
    func findOpenPullRequest(
        repo: String, head: String, base: String
    ) async throws -> (number: Int, headSHA: String)? {
        for page in 1...Self.maximumPages {
            let (listed, pulls) = try await call("GET", try pullsPage(repo, page: page))
            guard listed == 200, let open = pulls as? [[String: Any]] else {
                throw failure("listing pull requests", listed, pulls)
            }
            if let pull = open.first(where: { Self.isPull($0, from: head, of: repo, into: base) }),
                let number = (pull["number"] as? NSNumber)?.intValue
            {
                return (number, ((pull["head"] as? [String: Any])?["sha"] as? String) ?? "")
            }
            // Only an empty page is the last: a server whose MAX_RESPONSE_ITEMS is below the
            // limit asked for answers shorter pages that are not the end.
            if open.isEmpty { return nil }
        }
        return nil
    }

    /// `…/pulls?state=open&page=<page>&limit=50`, the query built as a query: appended as a path
    /// component, the `?` would be escaped and Gitea would answer 404.
    private func pullsPage(_ repo: String, page: Int) throws -> URL {
        var components = URLComponents(url: url(repo, "pulls"), resolvingAgainstBaseURL: false)
        components?.queryItems = [
            URLQueryItem(name: "state", value: "open"), URLQueryItem(name: "page", value: "\(page)"),
            URLQueryItem(name: "limit", value: "\(Self.pageSize)"),
        ]
        guard let url = components?.url else {
            throw GiteaAPIError(description: "cannot build the pull request list URL for \(repo)", isRetryable: false)
        }
        return url
    }

    private static func isPull(_ pull: [String: Any], from head: String, of repo: String, into base: String) -> Bool {
        let headBranch = pull["head"] as? [String: Any]
        let headRepo = (headBranch?["repo"] as? [String: Any])?["full_name"] as? String
        return headBranch?["ref"] as? String == head
            && headRepo?.lowercased() == repo.lowercased()
            && (pull["base"] as? [String: Any])?["ref"] as? String == base
    }

    /// A commit's combined status; nil when it has no statuses yet (Gitea answers an empty
    /// state, or an empty `{}`: no CI yet, never success). Gitea since 1.23 combines like GitHub
    /// (`CommitStatusStates.Combine` in modules/commitstatus/commit_status.go): failure if any
    /// context failed or errored, success when every context is success, warning or skipped, else
    /// pending. Older Gitea reported the worst state by priority, where `warning` ranks below
    /// `pending` and can hide a running context: a combined `warning` is therefore combined again
    /// from the listed statuses.
    func combinedStatus(repo: String, sha: String) async throws -> CIState? {
        let (status, body) = try await call("GET", url(repo, "commits/\(sha)/status"))
        guard status == 200 else { throw failure("combined status", status, body) }
        let combined = body as? [String: Any]
        let state = combined?["state"] as? String ?? ""
        // Gitea names a listed status's state `status` (GitHub: `state`).
        let listed = (combined?["statuses"] as? [[String: Any]] ?? []).compactMap {
            $0["status"] as? String ?? $0["state"] as? String
        }
        switch state {
        case "": return nil
        case "warning": return Self.combine(listed)
        case "skipped": return .success
        default: return CIState(rawValue: state) ?? Self.combine(listed)
        }
    }

    func failedChecks(repo: String, sha: String) async throws -> [FailedCheck] {
        let (status, body) = try await call("GET", url(repo, "commits/\(sha)/status"))
        guard status == 200 else { throw failure("combined status", status, body) }
        let listed = (body as? [String: Any])?["statuses"] as? [[String: Any]] ?? []
        return listed.compactMap { entry in
            guard let state = entry["status"] as? String ?? entry["state"] as? String,
                state == "failure" || state == "error"
            else { return nil }
            return FailedCheck(
                context: entry["context"] as? String ?? "?", state: state,
                description: entry["description"] as? String, targetURL: entry["target_url"] as? String)
        }
    }

    /// Gitea's (and GitHub's) combination of the latest status of each context.
    static func combine(_ states: [String]) -> CIState {
        if states.contains(where: { $0 == "failure" || $0 == "error" }) { return .failure }
        if !states.isEmpty, states.allSatisfy({ ["success", "warning", "skipped"].contains($0) }) { return .success }
        return .pending
    }

    /// Merges with a merge commit, only if the head is still `headSHA`, and has Gitea delete the
    /// task branch once merged. The message's first line is the commit's title, the rest its body.
    func merge(repo: String, number: Int, headSHA: String, message: String) async throws -> GiteaMergeResult {
        // Gitea's MergePullRequestOption: `MergeTitleField` and `MergeMessageField` (CamelCase;
        // a snake_case field is silently ignored); Gitea writes title + blank line + message.
        // `delete_branch_after_merge` is snake_case in the same option (Gitea deletes the head
        // branch unless another open PR uses it), as the Go SDK sends it.
        let lines = message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let title = lines.first.map(String.init) ?? message
        let rest = lines.count > 1 ? lines[1].trimmingCharacters(in: .whitespacesAndNewlines) : ""
        let (status, body) = try await call(
            "POST", url(repo, "pulls/\(number)/merge"),
            json: [
                "Do": "merge", "head_commit_id": headSHA, "MergeTitleField": title, "MergeMessageField": rest,
                "delete_branch_after_merge": true,
            ])
        let answer = body as? [String: Any]
        let message = answer?["message"] as? String
        switch status {
        case 200, 204:
            return .merged
        case 404:
            return .notFound
        case 405:
            if message == "Please try again later" { return .notReady }
            return .notMergeable(message.flatMap { $0.isEmpty ? nil : $0 } ?? "not mergeable")
        case 409:
            switch message {
            case "head out of date": return .staleHead
            case "merge push out of date": return .baseMoved
            case let message?: return .conflict(message)
            case nil: return .conflict(Self.conflictMessage(answer))
            }
        default:
            throw failure("merge", status, body)
        }
    }

    /// What Gitea's conflict errors say. They are sent as the error struct itself (no `message`):
    /// `ErrMergeConflicts`/`ErrMergeUnrelatedHistories` `{Style, StdOut, StdErr, Err}`,
    /// `ErrRebaseConflicts` with `CommitSHA` too. Git's own words are in StdErr/StdOut.
    static func conflictMessage(_ body: [String: Any]?) -> String {
        let style = body?["Style"] as? String
        let commit = body?["CommitSHA"] as? String
        let output = [body?["StdErr"] as? String, body?["StdOut"] as? String]
            .compactMap { $0?.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            .joined(separator: "\n")
        var text = commit.map { "rebase conflict at \($0.prefix(12))" } ?? "\(style ?? "merge") conflict"
        if !output.isEmpty { text += ": " + output }
        return String(text.prefix(1000))
    }

    /// The pull request as Gitea shows it now; nil when Gitea does not know it (404).
    func pullRequest(repo: String, number: Int) async throws -> PullRequestSnapshot? {
        let (status, body) = try await call("GET", url(repo, "pulls/\(number)"))
        if status == 404 { return nil }
        guard status == 200, let pull = body as? [String: Any] else {
            throw failure("reading a pull request", status, body)
        }
        let headSHA = (pull["head"] as? [String: Any])?["sha"] as? String
        return PullRequestSnapshot(
            state: pull["state"] as? String ?? "open", merged: (pull["merged"] as? Bool) == true,
            mergeSHA: (pull["merge_commit_sha"] as? String).flatMap { $0.isEmpty ? nil : $0 },
            headSHA: headSHA.flatMap { $0.isEmpty ? nil : $0 },
            updatedAt: (pull["updated_at"] as? String).flatMap { try? Date($0, strategy: .iso8601) })
    }
}
