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
public struct PlaneAPIError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public let isRetryable: Bool
}

/// The few Plane REST calls the orchestrator needs, over URLSession with timeouts.
public struct PlaneClient: Sendable {
    let settings: PlaneAPISettings

    /// Creates a client.
    public init(settings: PlaneAPISettings) {
        self.settings = settings
    }

    /// A project's identifier and name; nil when Plane says the project does not exist (404).
    public func project(id projectID: String) async throws -> (identifier: String, name: String?)? {
        // The id comes from a webhook body: it must stay one path segment.
        guard let segment = projectID.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_"))),
              !segment.isEmpty
        else { throw PlaneAPIError(description: "invalid Plane project id", isRetryable: false) }
        let workspace = settings.workspace.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? settings.workspace
        let url = settings.baseURL.appendingPathComponent("api/v1/workspaces/\(workspace)/projects/\(segment)/")
        var request = URLRequest(url: url, timeoutInterval: settings.timeout.seconds)
        request.setValue(settings.apiKey, forHTTPHeaderField: "X-API-Key")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw PlaneAPIError(description: "Plane API unreachable: \(error.localizedDescription)", isRetryable: true)
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        switch status {
        case 200:
            struct Project: Decodable {
                let identifier: String
                let name: String?
            }
            guard let project = try? JSONDecoder().decode(Project.self, from: data), !project.identifier.isEmpty else {
                throw PlaneAPIError(description: "Plane API answered project \(projectID.prefix(64)) without an identifier", isRetryable: false)
            }
            return (project.identifier, project.name)
        case 404:
            return nil
        case 429, 500...599:
            throw PlaneAPIError(description: "Plane API answered \(status) for project \(projectID.prefix(64))", isRetryable: true)
        default:
            throw PlaneAPIError(description: "Plane API answered \(status) for project \(projectID.prefix(64)) (check ORCH_PLANE_API_KEY and ORCH_PLANE_WORKSPACE)", isRetryable: false)
        }
    }
}
