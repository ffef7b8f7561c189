import Logging
import NIOPosix
import Synchronization

/// One database session of its own, outside the pool and on a thread of its own, for work that
/// must never wait behind other users: the heartbeat, the leader's lock, the readiness probe.
///
/// A busy pool (slow queries, a flood of requests) cannot delay it, and each statement is bounded
/// by a server-side `statement_timeout` and a client-side deadline that cancels it. A broken
/// session is replaced on the next call.
public final class DedicatedSession: Sendable {
    private let configuration: DatabaseConfiguration
    private let timeout: Duration
    private let settings: [String]
    private let logger: Logger
    private let thread: NIOThreadPool
    private let connection = Mutex<PGConnection?>(nil)

    /// Creates a session named `name` (in `application_name`); statements time out after `timeout`.
    /// `settings` are extra `SET` statements (e.g. `idle_session_timeout`) run on each new session.
    public init(
        configuration: DatabaseConfiguration, name: String, timeout: Duration, settings: [String] = [], logger: Logger
    ) {
        var configuration = configuration
        configuration.applicationName = String("\(configuration.applicationName) \(name)".prefix(63))
        // Connecting is bounded too, by libpq's connect_timeout (whole seconds, at least 2).
        let bound = Int(timeout.seconds.rounded(.up))
        configuration.connectTimeoutSeconds = max(2, min(configuration.connectTimeoutSeconds, bound))
        self.configuration = configuration
        self.timeout = timeout
        self.settings = settings
        self.logger = logger
        self.thread = NIOThreadPool(numberOfThreads: 1)
        self.thread.start()
    }

    /// Runs one parameterised statement, opening the session first if needed.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        let texts = parameters.map(\.postgresText)
        let raw = try await session()
        do {
            return try await withDeadline(raw) { try raw.exec(sql, texts) }
        } catch {
            if raw.isBroken || !(error is PostgresError) { drop(raw) }
            throw error
        }
    }

    /// Runs several statements in one round trip and returns one result per statement. After an
    /// error a session left inside a transaction is closed, so the server rolls the transaction
    /// back and releases its locks; the next call opens a new session.
    func pipeline(_ statements: [(sql: String, parameters: [any PostgresEncodable])]) async throws -> [QueryResult] {
        let texts = statements.map { (sql: $0.sql, parameters: $0.parameters.map(\.postgresText)) }
        let raw = try await session()
        do {
            return try await withDeadline(raw) { try raw.execPipeline(texts) }
        } catch {
            if !raw.isIdleAndHealthy { drop(raw) }
            throw error
        }
    }

    /// Ends whatever this session holds: a transaction left open is rolled back by closing it.
    func discard() {
        if let raw = connection.withLock({ $0 }) { drop(raw) }
    }

    /// Answers whether the server is reachable through this session (it reconnects if needed).
    public func ping() async throws {
        try await query("SELECT 1")
    }

    /// Takes a session-level advisory lock if it is free now; it lives as long as this session
    /// (`backendPID` tells a replaced session apart).
    public func tryAdvisoryLock(_ key: AdvisoryLockKey) async throws -> Bool {
        let (arguments, parameters) = key.sqlArguments
        return try await query("SELECT pg_try_advisory_lock(\(arguments)) AS locked", parameters)
            .first?.decode("locked", as: Bool.self) == true
    }

    /// Releases a lock taken by `tryAdvisoryLock` (closing the session would free it too).
    public func advisoryUnlock(_ key: AdvisoryLockKey) async throws {
        let (arguments, parameters) = key.sqlArguments
        try await query("SELECT pg_advisory_unlock(\(arguments))", parameters)
    }

    /// Settings for a session holding the leader lock: ended by the server when idle past
    /// `timeout`, so a paused holder frees the lock (a paused process keeps its socket open).
    public static func leaderSettings(idleTimeout: Duration) -> [String] {
        ["SET idle_session_timeout = \(Int(idleTimeout.seconds * 1000))"]
    }

    /// The server pid of the session, 0 when none is open (tests and diagnostics).
    public var backendPID: Int32 { connection.withLock { $0?.backendPID ?? 0 } }

    /// Closes the session and stops its thread.
    public func close() async {
        if let raw = connection.withLock({ state -> PGConnection? in
            defer { state = nil }; return state
        }) {
            raw.close()
        }
        try? await thread.shutdownGracefully()
    }

    private func session() async throws -> PGConnection {
        if let raw = connection.withLock({ $0 }), !raw.isBroken { return raw }
        let configuration = self.configuration
        let logger = self.logger
        let milliseconds = Int(timeout.seconds * 1000)
        let statements = ["SET statement_timeout = \(milliseconds)", "SET lock_timeout = \(milliseconds)"] + settings
        let raw = try await run {
            let raw = try PGConnection.connect(configuration: configuration, logger: logger)
            for statement in statements { _ = try raw.execSimple(statement) }
            return raw
        }
        connection.withLock { $0 = raw }
        return raw
    }

    private func drop(_ raw: PGConnection) {
        let current = connection.withLock { state -> Bool in
            guard state === raw else { return false }
            state = nil
            return true
        }
        if current { raw.close() }
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await thread.runIfActive(body)
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw PostgresError(kind: .poolClosed, message: "session closed")
        }
    }

    /// Runs a blocking call; past the deadline the server is asked to cancel the statement (the
    /// server-side timeout should have fired first; this covers a server that stopped answering).
    private func withDeadline<T: Sendable>(
        _ raw: PGConnection, _ body: @escaping @Sendable () throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await self.run(body) }
            group.addTask {
                try? await Task.sleep(for: self.timeout + .seconds(1))
                return nil
            }
            var value: T?
            while let next = try await group.next() {
                if let next {
                    value = next
                    break
                }
                raw.requestCancel()
            }
            group.cancelAll()
            guard let value else { throw PostgresError(kind: .poolTimeout, message: "statement exceeded \(timeout)") }
            return value
        }
    }
}
