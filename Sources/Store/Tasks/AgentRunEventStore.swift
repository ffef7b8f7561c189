import Foundation

/// The `agent_run_events` table: what each agent run printed, line by line.
public struct AgentRunEventStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// One stored line.
    public struct Event: Sendable, Encodable {
        public let seq: Int
        public let at: Date
        public let kind: String
        /// The line as JSON text: its object, or the text as a JSON string.
        public let data: String
    }

    /// One line to store: `kind` and its JSON text.
    public struct Line: Sendable, Equatable {
        public let kind: String
        public let json: String

        public init(kind: String, json: String) {
            self.kind = kind
            self.json = json
        }
    }

    /// Stores `lines` as events `first`, `first + 1`, … of `runID`, in one statement.
    public func append(runID: Int64, first: Int, _ lines: [Line]) async throws {
        guard !lines.isEmpty else { return }
        try await pool.query(
            """
            INSERT INTO agent_run_events (run_id, seq, kind, data)
            SELECT $1, $2 + n - 1, kind, data::jsonb
            FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS l(kind, data, n)
            ON CONFLICT DO NOTHING
            """,
            [runID, first, PostgresArray(lines.map(\.kind)), PostgresArray(lines.map(\.json))])
    }

    /// Up to `limit` events of `runID` after `after`, in order.
    public func events(runID: Int64, after: Int, limit: Int) async throws -> [Event] {
        try await pool.query(
            """
            SELECT seq, at, kind, data::text AS data FROM agent_run_events
            WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
            """,
            [runID, after, limit]
        ).rows.map {
            Event(
                seq: try $0.decode("seq"), at: try $0.decode("at"), kind: try $0.decode("kind"),
                data: try $0.decode("data"))
        }
    }

    /// Whether run `runID` of `workItem` has ended; nil when the task has no such run. (A
    /// follower asks this every poll: one primary-key read.)
    public func hasEnded(_ runID: Int64, of workItem: String) async throws -> Bool? {
        guard
            let row = try await pool.query(
                "SELECT ended_at IS NOT NULL AS ended FROM agent_runs WHERE id = $1 AND work_item = $2",
                [runID, workItem]
            ).first
        else { return nil }
        return try row.decode("ended")
    }

    /// Deletes the events of runs that ended longer than `retention` ago; returns how many.
    public func prune(retention: Duration, batchSize: Int = 10_000) async throws -> Int {
        try await pool.query(
            """
            DELETE FROM agent_run_events WHERE ctid = ANY(ARRAY(
                SELECT e.ctid FROM agent_run_events e JOIN agent_runs r ON r.id = e.run_id
                WHERE r.ended_at < now() - make_interval(secs => $1::float8) LIMIT $2))
            """,
            [retention.seconds, batchSize]
        ).affectedRows
    }
}
