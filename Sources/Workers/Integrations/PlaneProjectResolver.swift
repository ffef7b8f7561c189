import Foundation
import Store
import Synchronization

/// Maps a Plane project uuid (a webhook's `data.project`) to its configured repository.
///
/// A repository configured with `plane_project_id` matches directly. One configured without it is
/// matched by identifier (`repos[].project`), which the Plane API tells for a project uuid; the
/// answer is cached in memory and in `plane_projects`, so each project is fetched once across all
/// replicas and restarts.
public final class PlaneProjectResolver: Sendable {
    /// What a project uuid resolves to.
    public enum Resolution: Sendable, Equatable {
        case repository(RepositorySettings)
        /// Not a configured project; the reason says why, for the delivery's record.
        case unknown(reason: String)
    }

    let repos: [RepositorySettings]
    let client: PlaneClient?
    let store: PlaneProjectStore
    private let identifiers = Mutex<[String: String]>([:])

    /// Creates a resolver; without API settings only `plane_project_id` matches.
    public init(repos: [RepositorySettings], api: PlaneAPISettings?, pool: ConnectionPool) {
        self.repos = repos
        self.client = api.map(PlaneClient.init(settings:))
        self.store = PlaneProjectStore(pool: pool)
    }

    /// Resolves a project uuid. Throws when the Plane API could not answer (the job retries).
    public func resolve(projectID: String) async throws -> Resolution {
        if let repo = repos.first(where: { $0.planeProjectID == projectID }) { return .repository(repo) }
        let lookup = repos.filter { $0.planeProjectID == nil }
        let notConfigured = "Plane project \(projectID.prefix(64)) is not configured (repos[].plane_project_id)"
        guard !lookup.isEmpty else { return .unknown(reason: notConfigured) }
        guard let identifier = try await identifier(projectID: projectID) else {
            return .unknown(
                reason: client == nil
                    ? "\(notConfigured), and the Plane API is not set up to look it up (ORCH_PLANE_API_URL, ORCH_PLANE_API_KEY, ORCH_PLANE_WORKSPACE)"
                    : "Plane project \(projectID.prefix(64)) does not exist in the Plane API")
        }
        guard let repo = lookup.first(where: { $0.project == identifier }) else {
            return .unknown(
                reason:
                    "Plane project \(projectID.prefix(64)) is \(identifier.prefix(32)), which no repos[].project names")
        }
        return .repository(repo)
    }

    private func identifier(projectID: String) async throws -> String? {
        if let known = identifiers.withLock({ $0[projectID] }) { return known }
        if let cached = try await store.identifier(projectID: projectID) {
            identifiers.withLock { $0[projectID] = cached }
            return cached
        }
        guard let client, let project = try await client.project(id: projectID) else { return nil }
        try await store.save(projectID: projectID, identifier: project.identifier, name: project.name)
        identifiers.withLock { $0[projectID] = project.identifier }
        return project.identifier
    }
}
