import Foundation

/// The `webhook_deliveries` inbox: stores a delivery and enqueues its processing atomically.
public struct WebhookStore: Sendable {
    let pool: ConnectionPool

    /// Creates the store.
    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// A verified, parsed delivery to record.
    public struct Delivery: Sendable {
        public var source: String
        public var deliveryID: String?
        public var bodySHA256: String
        public var event: String
        public var payload: JSONB
        /// Set when the event is not one the orchestrator acts on; it is stored as `ignored`.
        public var ignoredReason: String?

        /// Creates a delivery.
        public init(source: String, deliveryID: String?, bodySHA256: String, event: String, payload: JSONB, ignoredReason: String? = nil) {
            self.source = source
            self.deliveryID = deliveryID
            self.bodySHA256 = bodySHA256
            self.event = event
            self.payload = payload
            self.ignoredReason = ignoredReason
        }
    }

    /// What recording a delivery did.
    public enum Outcome: Sendable, Equatable {
        /// Stored and its `process_webhook` job enqueued.
        case accepted(deliveryID: Int64, jobID: Int64)
        /// Stored as ignored (unknown event); no job.
        case ignored(deliveryID: Int64)
        /// Already received (same delivery id, or for Plane the same body): nothing written.
        case duplicate
    }

    /// The job kind that processes a stored delivery.
    public static let processJobKind = "process_webhook"

    /// Stores the delivery and, unless ignored, enqueues its processing job (and notifies the
    /// workers) in one statement, so one round trip and one commit per delivery. Two replicas
    /// receiving the same delivery at once: one stores it, the other gets `.duplicate`.
    public func record(_ delivery: Delivery) async throws -> Outcome {
        // The job id is drawn first so the delivery row can name its job without a second write.
        let row = try await pool.query("""
            WITH delivery AS (
                INSERT INTO webhook_deliveries (source, delivery_id, body_sha256, event, status, reason, payload, job_id)
                VALUES ($1, $2, $3, $4, CASE WHEN $6::text IS NULL THEN 'pending' ELSE 'ignored' END, $6, $5::jsonb,
                        CASE WHEN $6::text IS NULL THEN nextval(pg_get_serial_sequence('jobs', 'id')) END)
                ON CONFLICT DO NOTHING
                RETURNING id, job_id
            ), job AS (
                INSERT INTO jobs (id, kind, queue, payload, max_attempts, dedupe_key)
                SELECT job_id, $7, 'default', jsonb_build_object('delivery_id', id), 10, 'webhook:' || id
                FROM delivery WHERE job_id IS NOT NULL
                RETURNING id
            ), notified AS (
                SELECT pg_notify('orch_jobs', 'default') FROM job
            )
            SELECT d.id, d.job_id, (SELECT count(*) FROM job) AS jobs, (SELECT count(*) FROM notified) AS notified
            FROM (SELECT 1) one LEFT JOIN delivery d ON true
            """,
            [delivery.source, delivery.deliveryID, delivery.bodySHA256, delivery.event, delivery.payload,
             delivery.ignoredReason, Self.processJobKind]).first!
        guard let id = try row.decode("id", as: Int64?.self) else { return .duplicate }
        guard let jobID = try row.decode("job_id", as: Int64?.self) else { return .ignored(deliveryID: id) }
        return .accepted(deliveryID: id, jobID: jobID)
    }

    /// A stored delivery, for its processing job.
    public struct Stored: Sendable {
        public let id: Int64
        public let source: String
        public let event: String
        public let status: String
        public let payload: JSONB
    }

    /// One stored delivery.
    public func delivery(id: Int64) async throws -> Stored? {
        guard let row = try await pool.query(
            "SELECT id, source, event, status, payload FROM webhook_deliveries WHERE id = $1", [id]).first else { return nil }
        return Stored(id: try row.decode("id"), source: try row.decode("source"), event: try row.decode("event"),
                      status: try row.decode("status"), payload: try row.decode("payload"))
    }

    /// Records how processing ended: `processed` (with an optional note) or `ignored` with the reason.
    public func finish(id: Int64, status: String, reason: String?) async throws {
        try await pool.query(
            "UPDATE webhook_deliveries SET status = $2, reason = $3, processed_at = now() WHERE id = $1", [id, status, reason])
    }

    /// Deliveries stored, by source and status (for `/queue` and tests).
    public func counts() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await pool.query("SELECT source || '.' || status AS key, count(*) AS n FROM webhook_deliveries GROUP BY 1").rows {
            counts[try row.decode("key")] = try row.decode("n")
        }
        return counts
    }
}
