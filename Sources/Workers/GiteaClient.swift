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

    /// The open pull request from `head` into `base`, opened now if there is none.
    func openOrFindPullRequest(repo: String, head: String, base: String, title: String, body: String) async throws -> (number: Int, headSHA: String) {
        let (status, created) = try await call("POST", url(repo, "pulls"), json: ["head": head, "base": base, "title": title, "body": body])
        if status == 201, let pull = created as? [String: Any], let number = (pull["number"] as? NSNumber)?.intValue {
            return (number, ((pull["head"] as? [String: Any])?["sha"] as? String) ?? "")
        }
        guard status == 409 || status == 422 else { throw failure("opening a pull request", status, created) }
        // It exists already (a retried job, or a later development round): find it.
        let (listed, pulls) = try await call("GET", url(repo, "pulls?state=open&limit=50"))
        guard listed == 200, let open = pulls as? [[String: Any]] else { throw failure("listing pull requests", listed, pulls) }
        guard let pull = open.first(where: { ($0["head"] as? [String: Any])?["ref"] as? String == head }),
              let number = (pull["number"] as? NSNumber)?.intValue
        else { throw GiteaAPIError(description: "Gitea refused a pull request from \(head) but has none open", isRetryable: true) }
        return (number, ((pull["head"] as? [String: Any])?["sha"] as? String) ?? "")
    }

    /// A commit's combined status: `success`, `pending`, `failure`, `error`, or `""` with no statuses.
    func combinedStatus(repo: String, sha: String) async throws -> String {
        let (status, body) = try await call("GET", url(repo, "commits/\(sha)/status"))
        guard status == 200 else { throw failure("combined status", status, body) }
        return (body as? [String: Any])?["state"] as? String ?? ""
    }

    /// Merges with a merge commit, only if the head is still `headSHA`.
    func merge(repo: String, number: Int, headSHA: String, message: String) async throws -> MergeResult {
        let (status, body) = try await call("POST", url(repo, "pulls/\(number)/merge"), json: [
            "Do": "merge", "head_commit_id": headSHA, "merge_message_field": message,
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
