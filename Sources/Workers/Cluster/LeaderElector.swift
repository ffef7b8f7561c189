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

    public init(name: String, interval: Duration, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.interval = interval
        self.body = body
    }
}

/// Holds the leader role through a session advisory lock on a session of its own.
///
/// Every `interval` a follower tries `pg_try_advisory_lock`; the leader checks that its session is
/// still the one holding the lock and runs its duties. When the leader's process or connection
/// dies the server frees the lock and another replica takes over within one interval. A leader
/// that is paused (SIGSTOP, a frozen VM) keeps its socket open, so its session also carries an
/// `idle_session_timeout`: idle that long, the server ends it and the lock frees; the resumed
/// replica finds its session gone and steps down.
public final class LeaderElector: Service, Sendable {
    private let identity: ReplicaIdentity
    private let session: DedicatedSession
    private let replicas: ReplicaStore
    private let interval: Duration
    private let duties: [LeaderDuty]
    private let logger: Logger
    private let leading = Atomic<Bool>(false)
    private static let key = AdvisoryLockKey(namespace: AdvisoryLockKey.Namespace.leader, key: 1)

    /// Creates an elector. `session` must be its own (see `DedicatedSession.leaderSettings`).
    public init(
        identity: ReplicaIdentity, session: DedicatedSession, pool: ConnectionPool, interval: Duration,
        duties: [LeaderDuty], logger: Logger
    ) {
        self.identity = identity
        self.session = session
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
                    let locked = try await self.session.tryAdvisoryLock(Self.key)
                    failures.reset()
                    if locked {
                        await self.lead(backendPID: self.session.backendPID)
                    } else {
                        try? await Task.sleep(for: self.interval)
                    }
                } catch {
                    let delay = failures.next()
                    self.logger.warning(
                        "leader election failed", metadata: ["db.error": "\(error)", "retry.delay": "\(delay)"])
                    try? await Task.sleep(for: delay)
                }
            }
        }
        await session.close()
    }

    /// Whether the session that took the lock is still the live one (a replaced session holds nothing).
    private func stillHeld(backendPID: Int32) async -> Bool {
        do {
            try await session.ping()
            return session.backendPID == backendPID
        } catch {
            return false
        }
    }

    private func lead(backendPID: Int32) async {
        leading.store(true, ordering: .relaxed)
        let id = identity.id
        logger.notice("became leader", metadata: ["replica.id": "\(id)"])
        try? await replicas.recordLeader(id: id)
        let clock = ContinuousClock()
        var due = duties.map { _ in clock.now }
        while !Task.isCancelled {
            for (index, duty) in duties.enumerated() where clock.now >= due[index] {
                due[index] = clock.now.advanced(by: duty.interval)
                do {
                    try await duty.body()
                } catch {
                    logger.warning(
                        "leader duty failed", metadata: ["leader.duty": "\(duty.name)", "db.error": "\(error)"])
                }
            }
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { break }
            guard await stillHeld(backendPID: backendPID) else {
                logger.warning("lost the leader session; stepping down", metadata: ["replica.id": "\(id)"])
                break
            }
        }
        leading.store(false, ordering: .relaxed)
        if session.backendPID == backendPID {
            try? await session.advisoryUnlock(Self.key)
        }
        try? await replicas.clearLeader(id: id)
        logger.notice("stepped down as leader", metadata: ["replica.id": "\(id)"])
    }
}
