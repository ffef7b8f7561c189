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

    /// Creates an error.
    public init(description: String, isRetryable: Bool) {
        self.description = description
        self.isRetryable = isRetryable
    }
}

/// The Gitea REST calls of the pipeline: open (or find) the task's pull request, read a commit's
/// combined status, merge with the head the orchestrator checked.
struct GiteaClient: Sendable {
    let settings: GiteaSettings

    /// How a merge request ended.
    enum MergeResult: Equatable {
        case merged
        /// 405: Gitea will not merge it (conflicts, failing required checks, …).
        case notMergeable(String)
        /// 409: the head moved since it was checked; look again.
        case staleHead
    }

    private func url(_ repo: String, _ path: String) -> URL {
        settings.baseURL.appendingPathComponent("api/v1/repos/\(repo)/\(path)")
    }

    private func call(_ method: String, _ url: URL, json: Any? = nil) async throws -> (Int, Any?) {
        let (status, data) = try await OutboundHTTP.send(method, url, headers: ["Authorization": "token \(settings.token)"], json: json)
        return (status, try? JSONSerialization.jsonObject(with: data))
    }

    private func failure(_ what: String, _ status: Int, _ body: Any?) -> GiteaAPIError {
        let message = (body as? [String: Any])?["message"] as? String ?? ""
        return GiteaAPIError(description: "Gitea \(what) answered \(status) \(message.prefix(200))", isRetryable: status == 429 || status >= 500 || status == 0)
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
           let number = (pull["number"] as? NSNumber)?.intValue {
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
               let number = (pull["number"] as? NSNumber)?.intValue {
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

    /// A commit's combined status: `success`, `pending`, `failure`, `error`, or `""` with no statuses.
    func combinedStatus(repo: String, sha: String) async throws -> String {
        let (status, body) = try await call("GET", url(repo, "commits/\(sha)/status"))
        guard status == 200 else { throw failure("combined status", status, body) }
        return (body as? [String: Any])?["state"] as? String ?? ""
    }

    /// Merges with a merge commit, only if the head is still `headSHA`. The message's first line
    /// is the commit's title, the rest its body.
    func merge(repo: String, number: Int, headSHA: String, message: String) async throws -> MergeResult {
        // Gitea's MergePullRequestOption: `MergeTitleField` and `MergeMessageField` (CamelCase;
        // a snake_case field is silently ignored); Gitea writes title + blank line + message.
        let lines = message.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let title = lines.first.map(String.init) ?? message
        let rest = lines.count > 1 ? lines[1].trimmingCharacters(in: .whitespacesAndNewlines) : ""
        let (status, body) = try await call("POST", url(repo, "pulls/\(number)/merge"), json: [
            "Do": "merge", "head_commit_id": headSHA, "MergeTitleField": title, "MergeMessageField": rest,
        ])
        switch status {
        case 200, 204: return .merged
        case 405: return .notMergeable((body as? [String: Any])?["message"] as? String ?? "not mergeable")
        case 409: return .staleHead
        default: throw failure("merge", status, body)
        }
    }

    /// Whether a pull request is merged, and its merge commit.
    func pullRequest(repo: String, number: Int) async throws -> (merged: Bool, mergeSHA: String?, headSHA: String?) {
        let (status, body) = try await call("GET", url(repo, "pulls/\(number)"))
        guard status == 200, let pull = body as? [String: Any] else { throw failure("reading a pull request", status, body) }
        return ((pull["merged"] as? Bool) == true, pull["merge_commit_sha"] as? String, (pull["head"] as? [String: Any])?["sha"] as? String)
    }
}
