import Foundation

/// The `circuit_breakers` table: one breaker per name, shared by every replica, judged by the
/// database clock.
public struct CircuitBreakerStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// A breaker's state.
    public struct State: Sendable, Equatable {
        public let name: String
        public let failures: Int
        public let openUntil: Date?
        public let isOpen: Bool
        public let openedCount: Int
        public let lastReason: String?
    }

    /// Counts a transient failure in the current window (a new window starts when the last one is
    /// older than `window`); at `threshold` failures the breaker opens for `cooldown` and the count
    /// starts again. Under a row lock, so replicas counting at once never lose a failure.
    @discardableResult
    public func recordFailure(
        name: String, reason: String, threshold: Int, window: Duration, cooldown: Duration
    ) async throws -> State {
        try await pool.withTransaction { connection in
            try await connection.query(
                "INSERT INTO circuit_breakers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", [name])
            let current = try await connection.query(
                """
                SELECT failures, window_started_at < now() - make_interval(secs => $2::float8) AS expired
                FROM circuit_breakers WHERE name = $1 FOR UPDATE
                """,
                [name, window]
            ).first!
            let failures =
                (try current.decode("expired", as: Bool.self) ? 0 : try current.decode("failures", as: Int.self)) + 1
            let trips = failures >= threshold
            return try Self.state(
                try await connection.query(
                    """
                    UPDATE circuit_breakers SET
                        failures = $2, last_reason = $3, updated_at = now(),
                        window_started_at = CASE WHEN $4::bool OR $2 = 1 THEN now() ELSE window_started_at END,
                        open_until = CASE WHEN $4::bool THEN now() + make_interval(secs => $5::float8) ELSE open_until END,
                        opened_count = opened_count + CASE WHEN $4::bool THEN 1 ELSE 0 END
                    WHERE name = $1
                    RETURNING name, failures, open_until, coalesce(open_until > now(), false) AS open, opened_count, last_reason
                    """,
                    [name, trips ? 0 : failures, reason, trips, cooldown]
                ).first!)
        }
    }

    /// The breaker's state (closed with no failures when it never tripped).
    public func state(name: String) async throws -> State {
        guard
            let row = try await pool.query(
                """
                SELECT name, failures, open_until, coalesce(open_until > now(), false) AS open, opened_count, last_reason
                FROM circuit_breakers WHERE name = $1
                """,
                [name]
            ).first
        else {
            return State(name: name, failures: 0, openUntil: nil, isOpen: false, openedCount: 0, lastReason: nil)
        }
        return try Self.state(row)
    }

    private static func state(_ row: Row) throws -> State {
        State(
            name: try row.decode("name"), failures: try row.decode("failures"), openUntil: try row.decode("open_until"),
            isOpen: try row.decode("open", as: Bool?.self) ?? false, openedCount: try row.decode("opened_count"),
            lastReason: try row.decode("last_reason"))
    }
}
