import Foundation

/// The `plane_projects` table: Plane project identifiers already fetched from the Plane API.
public struct PlaneProjectStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// The cached identifier of a Plane project, if any replica fetched it before.
    public func identifier(projectID: String) async throws -> String? {
        try await pool.query("SELECT identifier FROM plane_projects WHERE project_id = $1", [projectID]).first?.decode(
            "identifier")
    }

    /// Caches (or refreshes) a project's identifier.
    public func save(projectID: String, identifier: String, name: String?) async throws {
        try await pool.query(
            """
            INSERT INTO plane_projects (project_id, identifier, name) VALUES ($1, $2, $3)
            ON CONFLICT (project_id) DO UPDATE SET identifier = excluded.identifier, name = excluded.name, fetched_at = now()
            """,
            [projectID, identifier, name])
    }
}
