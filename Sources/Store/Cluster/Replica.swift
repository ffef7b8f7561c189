import Foundation

/// One orchestrator process as recorded in `replicas`.
public struct Replica: Sendable {
    public let id: String
    public let name: String
    public let host: String
    public let pid: Int
    public let role: String
    public let startedAt: Date
    public let heartbeatAt: Date
    public let stoppedAt: Date?
    public let leaderSince: Date?
    /// Seconds since the last heartbeat, by the database clock.
    public let heartbeatAgeSeconds: Double

    init(row: Row) throws {
        id = try row.decode("id")
        name = try row.decode("name")
        host = try row.decode("host")
        pid = try row.decode("pid")
        role = try row.decode("role")
        startedAt = try row.decode("started_at")
        heartbeatAt = try row.decode("heartbeat_at")
        stoppedAt = try row.decode("stopped_at")
        leaderSince = try row.decode("leader_since")
        heartbeatAgeSeconds = try row.decode("heartbeat_age")
    }
}
