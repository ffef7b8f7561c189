import Logging
import ServiceLifecycle
import Store

/// Stamps this replica's heartbeat and extends the leases of its running jobs every `interval`.
///
/// Also catches cancel requests whose notification was missed, and re-registers the replica if
/// its row vanished (for example after a long pause made the leader sweep it). On graceful
/// shutdown — after the worker has handed its jobs back — it marks the replica stopped.
public struct ReplicaHeartbeat: Service {
    /// The replica's identity as registered.
    public struct Identity: Sendable {
        public var id: String
        public var name: String
        public var host: String
        public var pid: Int
        public var role: String

        /// Creates an identity.
        public init(id: String, name: String, host: String, pid: Int, role: String) {
            self.id = id
            self.name = name
            self.host = host
            self.pid = pid
            self.role = role
        }
    }

    let identity: Identity
    let interval: Duration
    let lease: Duration
    let jobs: JobStore
    let replicas: ReplicaStore
    let onCancelRequested: @Sendable ([Int64]) -> Void
    let logger: Logger

    /// Creates the heartbeat service.
    public init(
        identity: Identity, interval: Duration, lease: Duration, jobs: JobStore, replicas: ReplicaStore, logger: Logger,
        onCancelRequested: @escaping @Sendable ([Int64]) -> Void
    ) {
        self.identity = identity
        self.interval = interval
        self.lease = lease
        self.jobs = jobs
        self.replicas = replicas
        self.logger = logger
        self.onCancelRequested = onCancelRequested
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await beat()
                try? await Task.sleep(for: interval)
            }
        }
        do {
            try await replicas.markStopped(id: identity.id)
            logger.info("replica marked stopped", metadata: ["replica.id": "\(identity.id)"])
        } catch {
            logger.warning("could not mark replica stopped", metadata: ["db.error": "\(error)"])
        }
    }

    /// One heartbeat; errors are logged, never thrown, so a database blip does not stop the replica.
    func beat() async {
        do {
            let result = try await jobs.heartbeat(replicaID: identity.id, lease: lease)
            if !result.replicaKnown {
                logger.warning("replica row missing; registering again", metadata: ["replica.id": "\(identity.id)"])
                try await replicas.register(
                    id: identity.id, name: identity.name, host: identity.host, pid: identity.pid, role: identity.role)
            }
            if !result.cancelRequested.isEmpty { onCancelRequested(result.cancelRequested) }
        } catch {
            logger.warning("heartbeat failed", metadata: ["db.error": "\(error)", "replica.id": "\(identity.id)"])
        }
    }
}
