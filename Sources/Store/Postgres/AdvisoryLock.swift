/// A session-level advisory lock key in PostgreSQL's two-integer form: a fixed namespace and a key.
public struct AdvisoryLockKey: Sendable, Hashable, CustomStringConvertible {
    /// The first integer: which family of locks this is.
    public let namespace: Int32
    /// The second integer, or a text hashed by the server with `hashtext`.
    public let key: Key

    /// The second half of the key.
    public enum Key: Sendable, Hashable {
        case integer(Int32)
        case text(String)
    }

    /// The project's namespaces, so unrelated locks can never collide.
    public enum Namespace {
        /// Leader election.
        public static let leader: Int32 = 0x4F52_0001
        /// The migrator.
        public static let migrations: Int32 = 0x4F52_0002
        /// Per-repository merge leases (keyed by `hashtext(repo)`).
        public static let merge: Int32 = 0x4F52_0003
        /// Writers of `task_events` hold it shared until they commit; the notifications cursor
        /// takes it exclusively, so it never reads past an event still being written.
        public static let taskEvents: Int32 = 0x4F52_0004
        /// Writers of `task_dependencies` take it for their transaction: two edges added at once
        /// cannot close a cycle that neither saw.
        public static let taskDependencies: Int32 = 0x4F52_0005
        /// Automatic lessons of one type, work item and stage (keyed by `hashtext`): two
        /// transactions recording the same finding at once cannot both miss the other's row.
        public static let lessons: Int32 = 0x4F52_0010
    }

    /// A key from two integers.
    public init(namespace: Int32, key: Int32) {
        self.namespace = namespace
        self.key = .integer(key)
    }

    /// A key whose second integer is the server's `hashtext(text)`.
    public init(namespace: Int32, text: String) {
        self.namespace = namespace
        self.key = .text(text)
    }

    /// `(sqlExpression, parameters)` for the key's two arguments, starting at `$1`.
    var sqlArguments: (String, [any PostgresEncodable]) {
        switch key {
        case .integer(let value): return ("$1::int, $2::int", [namespace, value])
        case .text(let value): return ("$1::int, hashtext($2)", [namespace, value])
        }
    }

    public var description: String {
        switch key {
        case .integer(let value): return "\(namespace)/\(value)"
        case .text(let value): return "\(namespace)/\(value)"
        }
    }
}

/// A held session advisory lock. The lock lives as long as its dedicated connection.
public struct AdvisoryLockHandle: Sendable {
    let connection: PGConnection
    let pool: ConnectionPool
    /// The key held.
    public let key: AdvisoryLockKey

    /// Asks the server whether the holding session is still alive (and so still holds the lock).
    public func isHeld() async -> Bool {
        let connection = self.connection
        do {
            _ = try await pool.run { try connection.exec("SELECT 1", []) }
            return true
        } catch {
            return false
        }
    }

    /// The server pid of the holding session (for diagnostics and tests).
    public var backendPID: Int32 { connection.backendPID }
}

extension ConnectionPool {
    /// Waits for the lock, runs `body` while holding it on a dedicated connection, then releases it.
    /// If this process dies, the server drops the session and with it the lock.
    public func withAdvisoryLock<T>(
        _ key: AdvisoryLockKey,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (AdvisoryLockHandle) async throws -> T
    ) async throws -> T {
        let connection = try await openDedicated()
        defer { connection.close() }
        let (arguments, parameters) = key.sqlArguments
        let texts = parameters.map(\.postgresText)
        try await withTaskCancellationHandler {
            _ = try await run { try connection.exec("SELECT pg_advisory_lock(\(arguments))", texts) }
        } onCancel: {
            connection.requestCancel()
        }
        return try await holding(AdvisoryLockHandle(connection: connection, pool: self, key: key), body)
    }

    /// Takes the lock only if it is free right now; returns `nil` without running `body` otherwise.
    public func withTryAdvisoryLock<T>(
        _ key: AdvisoryLockKey,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (AdvisoryLockHandle) async throws -> T
    ) async throws -> T? {
        let connection = try await openDedicated()
        defer { connection.close() }
        let (arguments, parameters) = key.sqlArguments
        let texts = parameters.map(\.postgresText)
        let result = try await run { try connection.exec("SELECT pg_try_advisory_lock(\(arguments)) AS locked", texts) }
        guard try result.first?.decode("locked", as: Bool.self) == true else { return nil }
        return try await holding(AdvisoryLockHandle(connection: connection, pool: self, key: key), body)
    }

    /// Runs `body` with the lock held, then releases it, whether `body` returned or threw.
    private func holding<T>(
        _ handle: AdvisoryLockHandle, isolation: isolated (any Actor)? = #isolation,
        _ body: (AdvisoryLockHandle) async throws -> T
    ) async throws -> T {
        do {
            let value = try await body(handle)
            await unlock(handle)
            return value
        } catch {
            await unlock(handle)
            throw error
        }
    }

    private func unlock(_ handle: AdvisoryLockHandle) async {
        // Closing the session would free it too; unlocking first makes the release explicit in the server log.
        let connection = handle.connection
        let (arguments, parameters) = handle.key.sqlArguments
        let texts = parameters.map(\.postgresText)
        _ = try? await run { try connection.exec("SELECT pg_advisory_unlock(\(arguments))", texts) }
    }
}
