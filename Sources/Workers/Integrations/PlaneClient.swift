import Foundation
import Store

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where the Plane REST API is (`ORCH_PLANE_API_URL`, `ORCH_PLANE_API_KEY`, `ORCH_PLANE_WORKSPACE`).
public struct PlaneAPISettings: Sendable, Equatable {
    /// The server's base URL, e.g. `https://plane.example.com`; the client appends `/api/v1/…`.
    public var baseURL: URL
    /// Sent as `X-API-Key`.
    public var apiKey: String
    /// The workspace slug.
    public var workspace: String
    /// Per-request timeout.
    public var timeout: Duration

    /// Creates settings.
    public init(baseURL: URL, apiKey: String, workspace: String, timeout: Duration = .seconds(10)) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.workspace = workspace
        self.timeout = timeout
    }
}

/// A failed Plane API call. `isRetryable` is true for network errors, 429 and 5xx: the job that
/// needed the answer should run again later; other statuses will not change by retrying.
public struct PlaneAPIError: RetryClassifiedError, CustomStringConvertible, Sendable {
    public let description: String
    public let isRetryable: Bool

    public init(description: String, isRetryable: Bool) {
        self.description = description
        self.isRetryable = isRetryable
    }
}

/// The few Plane REST calls the orchestrator needs, over URLSession with timeouts.
public struct PlaneClient: Sendable {
    let settings: PlaneAPISettings

    public init(settings: PlaneAPISettings) {
        self.settings = settings
    }

    /// `…/api/v1/workspaces/<slug>/<path>`, the workspace slug escaped.
    private func url(_ path: String) -> URL {
        let workspace =
            settings.workspace.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? settings.workspace
        return settings.baseURL.appendingPathComponent("api/v1/workspaces/\(workspace)/\(path)")
    }

    private func send(_ method: String, _ url: URL, json: Any? = nil) async throws -> (status: Int, body: Data) {
        do {
            return try await OutboundHTTP.send(
                method, url, headers: ["X-API-Key": settings.apiKey, "Accept": "application/json"], json: json,
                timeout: settings.timeout)
        } catch let error as OutboundHTTP.Unreachable {
            throw PlaneAPIError(description: "Plane API unreachable: \(error.description)", isRetryable: true)
        }
    }

    /// A value from a webhook body as one path segment (never `/` or `..`).
    private static func segment(_ id: String, what: String) throws -> String {
        guard
            let segment = id.addingPercentEncoding(
                withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_"))),
            !segment.isEmpty
        else { throw PlaneAPIError(description: "invalid Plane \(what) id", isRetryable: false) }
        return segment
    }

    /// A project's identifier and name; nil when Plane says the project does not exist (404).
    public func project(id projectID: String) async throws -> (identifier: String, name: String?)? {
        let (status, data) = try await send("GET", url("projects/\(try Self.segment(projectID, what: "project"))/"))
        switch status {
        case 200:
            struct Project: Decodable {
                let identifier: String
                let name: String?
            }
            guard let project = try? JSONDecoder().decode(Project.self, from: data), !project.identifier.isEmpty else {
                throw PlaneAPIError(
                    description: "Plane API answered project \(projectID.prefix(64)) without an identifier",
                    isRetryable: false)
            }
            return (project.identifier, project.name)
        case 404:
            return nil
        case 429, 500...599:
            throw PlaneAPIError(
                description: "Plane API answered \(status) for project \(projectID.prefix(64))", isRetryable: true)
        default:
            throw PlaneAPIError(
                description:
                    "Plane API answered \(status) for project \(projectID.prefix(64)) (check ORCH_PLANE_API_KEY and ORCH_PLANE_WORKSPACE)",
                isRetryable: false)
        }
    }

    /// Comments on a work item, idempotently: `externalID` names the comment, and Plane's 409 for
    /// one already posted counts as done.
    func comment(projectID: String, issueID: String, html: String, externalID: String) async throws {
        let path =
            "projects/\(try Self.segment(projectID, what: "project"))/issues/\(try Self.segment(issueID, what: "issue"))/comments/"
        let (status, data) = try await send(
            "POST", url(path),
            json: [
                "comment_html": html, "external_source": "orchestrator", "external_id": externalID,
            ])
        switch status {
        case 200, 201, 409: return
        case 429, 500...599: throw PlaneAPIError(description: "Plane comment answered \(status)", isRetryable: true)
        default:
            throw PlaneAPIError(
                description: "Plane comment answered \(status): \(String(decoding: data.prefix(300), as: UTF8.self))",
                isRetryable: false)
        }
    }
}
