import Logging
import Store

/// Records the runs of this replica's own reaper duties in `replica_maintenance_runs` (under its
/// stable name and host), for the `/queue` `reaper` block.
public struct ReplicaDutyRecorder: Sendable {
    let store: ReplicaMaintenanceStore
    let identity: ReplicaIdentity
    let logger: Logger

    public init(pool: ConnectionPool, identity: ReplicaIdentity, logger: Logger) {
        self.store = ReplicaMaintenanceStore(pool: pool)
        self.identity = identity
        self.logger = logger
    }

    /// Runs `body` as a run of `duty` and records what it affected, or the error it threw (then
    /// rethrown). A failed record is only logged: the duty's work is done, and the next run
    /// records again.
    @discardableResult
    public func run(_ duty: String, _ body: () async throws -> Int) async throws -> Int {
        let affected: Int
        do {
            affected = try await body()
        } catch {
            await record(duty, affected: 0, error: "\(error)")
            throw error
        }
        await record(duty, affected: affected, error: nil)
        return affected
    }

    private func record(_ duty: String, affected: Int, error: String?) async {
        do {
            try await store.record(
                duty: duty, name: identity.name, host: identity.host, replicaID: identity.id, affected: affected,
                error: error)
        } catch {
            logger.warning(
                "could not record a maintenance run", metadata: ["duty": "\(duty)", "db.error": "\(error)"])
        }
    }
}
