import Logging
import ServiceLifecycle
import Store

/// Stamps this replica's heartbeat and extends the leases of the jobs its worker holds, every
/// `interval`, on a database session of its own (never queued behind the pool's users).
///
/// Each beat also tells the worker which held jobs were asked to cancel and which are no longer
/// its own (rescued, cancelled, deleted): their handlers are stopped at once, killing their
/// agents. A replica that finds itself marked stopped (or its row gone) — it was paused or cut off
/// past the TTL and the leader gave up on it — stops claiming, abandons its jobs and registers
/// again under a new id. On graceful shutdown, after the worker handed its jobs back, it marks
/// the replica stopped.
public struct ReplicaHeartbeat: Service {
    let identity: ReplicaIdentity
    let interval: Duration
    let lease: Duration
    let session: DedicatedSession
    let replicas: ReplicaStore
    let worker: QueueWorker?
    let logger: Logger

    /// Creates the heartbeat service; `session` is its own database session.
    public init(
        identity: ReplicaIdentity, interval: Duration, lease: Duration, session: DedicatedSession,
        replicas: ReplicaStore, worker: QueueWorker?, logger: Logger
    ) {
        self.identity = identity
        self.interval = interval
        self.lease = lease
        self.session = session
        self.replicas = replicas
        self.worker = worker
        self.logger = logger
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
        await session.close()
    }

    /// One heartbeat; errors are logged, never thrown, so a database blip does not stop the replica.
    func beat() async {
        let id = identity.id
        do {
            let held = worker?.heldLeases(replicaID: id) ?? []
            let result = try await JobStore.heartbeat(replicaID: id, lease: lease, holding: held, on: session)
            if result.replicaStopped || !result.replicaKnown {
                try await registerAgain(previous: id, stopped: result.replicaStopped)
                return
            }
            if !result.cancelRequested.isEmpty { worker?.cancel(jobIDs: result.cancelRequested) }
            if !result.lost.isEmpty {
                logger.warning(
                    "jobs are no longer held by this replica; stopping their handlers",
                    metadata: [
                        "replica.id": "\(id)", "job.ids": "\(result.lost)",
                    ])
                worker?.stopLost(jobIDs: result.lost)
            }
        } catch {
            logger.warning("heartbeat failed", metadata: ["db.error": "\(error)", "replica.id": "\(id)"])
        }
    }

    /// The leader gave up on this replica: everything it holds is being (or was) rescued. Stop
    /// claiming, abandon the jobs (handlers cancelled, nothing applied; still-held ones are handed
    /// back), then live on under a new id.
    private func registerAgain(previous: String, stopped: Bool) async throws {
        let why = stopped ? "was marked stopped (heartbeats missed past the TTL)" : "lost its row"
        logger.error(
            "this replica \(why); abandoning its jobs and registering again", metadata: ["replica.id": "\(previous)"])
        worker?.pauseClaiming()
        worker?.abandonAll()
        let id = identity.renew()
        try await replicas.register(
            id: id, name: identity.name, host: identity.host, pid: identity.pid, role: identity.role)
        worker?.resumeClaiming()
        logger.notice(
            "registered again under a new id", metadata: ["replica.id": "\(id)", "replica.previous_id": "\(previous)"])
    }
}
