import Logging
import NIOPosix
import Synchronization

/// A bounded pool of libpq connections whose blocking calls run on a dedicated thread pool.
///
/// Connections are opened lazily up to `maxConnections`; callers beyond that wait in FIFO order.
/// A connection that broke, or that is returned inside a transaction, is closed rather than reused.
/// After a server restart the stale idle connections fail their pre-use probe and are replaced.
public final class ConnectionPool: Sendable {
    /// The configuration the pool was made with.
    public let configuration: DatabaseConfiguration
    let threadPool: NIOThreadPool
    let logger: Logger
    private let state: Mutex<State>

    private enum Grant: Sendable {
        case connection(PGConnection)
        case mayOpen
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Grant, any Error>
    }

    private struct State {
        var idle: [PGConnection] = []
        var open = 0
        var waiters: [Waiter] = []
        var nextWaiterID: UInt64 = 0
        var closed = false
    }

    /// Creates a pool; no connection is opened until first use.
    public init(configuration: DatabaseConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        // Every pooled connection, plus the listener and lock holders, may block one thread at a time.
        self.threadPool = NIOThreadPool(numberOfThreads: configuration.maxConnections + 4)
        self.threadPool.start()
        self.state = Mutex(State())
    }

    /// Closes idle connections, fails waiters and stops the thread pool.
    public func close() async {
        let (idle, waiters) = state.withLock { state -> ([PGConnection], [Waiter]) in
            state.closed = true
            defer {
                state.idle = []
                state.waiters = []
            }
            state.open -= state.idle.count
            return (state.idle, state.waiters)
        }
        idle.forEach { $0.close() }
        waiters.forEach { $0.continuation.resume(throwing: PostgresError(kind: .poolClosed, message: "pool closed")) }
        try? await threadPool.shutdownGracefully()
    }

    /// Borrows a connection for the duration of `body`, returning it afterwards (or discarding it if broken).
    public func withConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (Connection) async throws -> T
    ) async throws -> T {
        let raw = try await acquire()
        let connection = Connection(raw: raw, pool: self)
        do {
            let value = try await body(connection)
            release(raw)
            return value
        } catch {
            release(raw)
            throw error
        }
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws (the original error is rethrown).
    public func withTransaction<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (Connection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in
            try await connection.execute("BEGIN")
            let value: T
            do {
                value = try await body(connection)
            } catch {
                do {
                    try await connection.execute("ROLLBACK")
                } catch let rollbackError {
                    // The connection is left mid-transaction; `release` discards it. Keep the caller's error.
                    logger.warning("rollback failed", metadata: ["db.error": "\(rollbackError)"])
                }
                throw error
            }
            try await connection.execute("COMMIT")
            return value
        }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [any PostgresEncodable] = []) async throws -> QueryResult {
        try await withConnection { try await $0.query(sql, parameters) }
    }

    /// Runs a `DELETE … LIMIT $2` statement (`$1` is `retention`, `$2` the batch size) until it
    /// deletes fewer rows than a batch: old rows go in small statements, so no long lock or huge
    /// transaction is held. Returns how many rows went.
    func deleteInBatches(_ sql: String, retention: Duration, batchSize: Int) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await query(sql, [retention, batchSize]).affectedRows
            total += deleted
            if deleted < batchSize { return total }
        }
    }

    /// Opens a connection outside the pool, for holders that need a session of their own (locks, LISTEN).
    func openDedicated() async throws -> PGConnection {
        let configuration = self.configuration
        let logger = self.logger
        return try await threadPool.runIfActive {
            try PGConnection.connect(configuration: configuration, logger: logger)
        }
    }

    /// Runs a blocking libpq call on the pool's threads.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await threadPool.runIfActive(body)
        } catch let error as PostgresError {
            throw error
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            throw PostgresError(kind: .poolClosed, message: "pool closed")
        }
    }

    // MARK: - Acquire and release

    private func acquire() async throws -> PGConnection {
        while true {
            let grant: Grant? = try state.withLock { state in
                if state.closed { throw PostgresError(kind: .poolClosed, message: "pool closed") }
                if let connection = state.idle.popLast() { return .connection(connection) }
                if state.open < configuration.maxConnections {
                    state.open += 1
                    return .mayOpen
                }
                return nil
            }
            switch grant {
            case .connection(let connection):
                if connection.probeIdle() { return connection }
                discard(connection, reason: "stale idle connection")
                continue
            case .mayOpen:
                return try await openCounted()
            case nil:
                switch try await waitInLine() {
                case .connection(let connection):
                    if connection.probeIdle() { return connection }
                    discard(connection, reason: "stale idle connection")
                case .mayOpen:
                    return try await openCounted()
                }
            }
        }
    }

    /// Opens a connection whose slot was already counted in `open`; gives the slot back on failure.
    private func openCounted() async throws -> PGConnection {
        do {
            return try await openDedicated()
        } catch {
            slotFreed()
            throw error
        }
    }

    private func waitInLine() async throws -> Grant {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let timeout = configuration.acquireTimeout
        return try await withThrowingTaskGroup(of: Grant?.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { continuation in
                        let enqueued = self.state.withLock { state -> Bool in
                            guard !state.closed, !Task.isCancelled else { return false }
                            state.waiters.append(Waiter(id: id, continuation: continuation))
                            return true
                        }
                        if !enqueued { continuation.resume(throwing: CancellationError()) }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { state -> Waiter? in
                        guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                        return state.waiters.remove(at: index)
                    }
                    waiter?.continuation.resume(throwing: CancellationError())
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            var granted: Grant?
            var firstError: (any Error)?
            do {
                granted = try await group.next() ?? nil
            } catch {
                firstError = error
            }
            group.cancelAll()
            // A grant may race with the timeout: keep it rather than leak it.
            while let result = try? await group.next() {
                if let result, granted == nil { granted = result } else if let result { giveBack(result) }
            }
            if let granted { return granted }
            if let firstError, !(firstError is CancellationError) || Task.isCancelled { throw firstError }
            throw PostgresError(kind: .poolTimeout, message: "no database connection free after \(timeout)")
        }
    }

    private func giveBack(_ grant: Grant) {
        switch grant {
        case .connection(let connection): release(connection)
        case .mayOpen: slotFreed()
        }
    }

    func release(_ connection: PGConnection) {
        guard connection.isIdleAndHealthy else {
            discard(connection, reason: connection.isBroken ? "connection broken" : "returned inside a transaction")
            return
        }
        let handedTo: Waiter? = state.withLock { state in
            if state.closed { return nil }
            if !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.idle.append(connection)
            return nil
        }
        if let handedTo {
            handedTo.continuation.resume(returning: .connection(connection))
        } else if state.withLock({ $0.closed }) {
            state.withLock { $0.open -= 1 }
            connection.close()
        }
    }

    private func discard(_ connection: PGConnection, reason: String) {
        logger.debug(
            "discarding database connection",
            metadata: ["db.reason": "\(reason)", "db.backend_pid": "\(connection.backendPID)"])
        connection.close()
        if connection.isBroken {
            // One broken connection usually means the server restarted: probe the idle ones now.
            let idle = state.withLock { state -> [PGConnection] in
                defer { state.idle = [] }
                return state.idle
            }
            var healthy: [PGConnection] = []
            for candidate in idle {
                if candidate.probeIdle() {
                    healthy.append(candidate)
                } else {
                    candidate.close()
                    slotFreed()
                }
            }
            for candidate in healthy { release(candidate) }
        }
        slotFreed()
    }

    /// One slot became free: let the first waiter open a connection in it.
    private func slotFreed() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.closed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .mayOpen)
    }

    /// Pool statistics for `/queue` and tests.
    public var statistics: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }
}
