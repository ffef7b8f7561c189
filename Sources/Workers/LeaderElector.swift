import Logging
import ServiceLifecycle
import Store
import Synchronization

/// A periodic task only the leader runs (rescue, pruning, …).
public struct LeaderDuty: Sendable {
    /// Name for logs.
    public let name: String
    /// How often it runs while this replica leads.
    public let interval: Duration
    let body: @Sendable () async throws -> Void

    /// Creates a duty.
    public init(name: String, interval: Duration, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.body = body
    }
}

/// Holds the leader role through a session advisory lock on a dedicated connection.
///
/// Every `interval` a follower tries `pg_try_advisory_lock`; the leader checks that its session is
/// alive and runs its duties. When the leader's process or connection dies the server frees the
/// lock and another replica takes over within one interval.
public final class LeaderElector: Service, Sendable {
    private let replicaID: String
    private let pool: ConnectionPool
    private let replicas: ReplicaStore
    private let interval: Duration
    private let duties: [LeaderDuty]
    private let logger: Logger
    private let leading = Atomic<Bool>(false)

    /// Creates an elector.
    public init(replicaID: String, pool: ConnectionPool, interval: Duration, duties: [LeaderDuty], logger: Logger) {
        self.replicaID = replicaID
        self.pool = pool
        self.replicas = ReplicaStore(pool: pool)
        self.interval = interval
        self.duties = duties
        self.logger = logger
    }

    /// Whether this replica currently leads.
    public var isLeader: Bool { leading.load(ordering: .relaxed) }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var failures = Backoff(initial: self.interval, maximum: self.interval * 4)
            while !Task.isCancelled {
                do {
                    let led = try await self.pool.withTryAdvisoryLock(AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.leader, key: 1)) { handle in
                        await self.lead(handle)
                        return true
                    }
                    failures.reset()
                    if led == nil { try? await Task.sleep(for: self.interval) }
                } catch {
                    let delay = failures.next()
                    self.logger.warning("leader election failed", metadata: ["db.error": "\(error)", "retry.delay": "\(delay)"])
                    try? await Task.sleep(for: delay)
                }
            }
        }
    }

    private func lead(_ handle: AdvisoryLockHandle) async {
        leading.store(true, ordering: .relaxed)
        logger.notice("became leader", metadata: ["replica.id": "\(replicaID)"])
        try? await replicas.recordLeader(id: replicaID)
        let clock = ContinuousClock()
        var due = duties.map { _ in clock.now }
        while !Task.isCancelled {
            for (index, duty) in duties.enumerated() where clock.now >= due[index] {
                due[index] = clock.now.advanced(by: duty.interval)
                do {
                    try await duty.body()
                } catch {
                    logger.warning("leader duty failed", metadata: ["leader.duty": "\(duty.name)", "db.error": "\(error)"])
                }
            }
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { break }
            guard await handle.isHeld() else {
                logger.warning("lost the leader session; stepping down", metadata: ["replica.id": "\(replicaID)"])
                break
            }
        }
        leading.store(false, ordering: .relaxed)
        try? await replicas.clearLeader(id: replicaID)
        logger.notice("stepped down as leader", metadata: ["replica.id": "\(replicaID)"])
    }
}
