/// How to reach PostgreSQL and how many connections to keep.
public struct DatabaseConfiguration: Sendable {
    /// A libpq conninfo string or `postgresql://` URI; `nil` lets libpq's `PG*` variables and defaults apply.
    public var connectionString: String?
    /// Reported as `application_name`, so `pg_stat_activity` shows which replica holds which session.
    public var applicationName: String
    /// Seconds libpq waits for a new connection (libpq's minimum is 2).
    public var connectTimeoutSeconds: Int
    /// Upper bound on pooled connections (dedicated listener and lock connections are extra).
    public var maxConnections: Int
    /// How long a caller waits for a free pooled connection before `poolTimeout`.
    public var acquireTimeout: Duration

    public init(
        connectionString: String? = nil,
        applicationName: String = "orchestrator",
        connectTimeoutSeconds: Int = 5,
        maxConnections: Int = 10,
        acquireTimeout: Duration = .seconds(30)
    ) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.connectTimeoutSeconds = max(2, connectTimeoutSeconds)
        self.maxConnections = max(1, maxConnections)
        self.acquireTimeout = acquireTimeout
    }
}
