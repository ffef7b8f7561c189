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

    /// Stores the delivery and, unless ignored, enqueues its processing job, in one transaction.
    /// Two replicas receiving the same delivery at once: one stores it, the other gets `.duplicate`.
    public func record(_ delivery: Delivery) async throws -> Outcome {
        try await pool.withTransaction { connection in
            let inserted = try await connection.query("""
                INSERT INTO webhook_deliveries (source, delivery_id, body_sha256, event, status, reason, payload)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
                ON CONFLICT DO NOTHING
                RETURNING id
                """,
                [delivery.source, delivery.deliveryID, delivery.bodySHA256, delivery.event,
                 delivery.ignoredReason == nil ? "pending" : "ignored", delivery.ignoredReason, delivery.payload])
            guard let id = try inserted.first?.decode("id", as: Int64.self) else { return .duplicate }
            if delivery.ignoredReason != nil { return .ignored(deliveryID: id) }
            let job = NewJob(
                kind: Self.processJobKind, payload: JSONB(text: #"{"delivery_id": \#(id)}"#), maxAttempts: 10,
                dedupeKey: "webhook:\(id)")
            guard let jobID = try await JobStore(pool: pool).enqueue([job], on: connection).first ?? nil else {
                throw PostgresError(kind: .server, message: "processing job for delivery \(id) was not enqueued")
            }
            try await connection.query("UPDATE webhook_deliveries SET job_id = $2 WHERE id = $1", [id, jobID])
            return .accepted(deliveryID: id, jobID: jobID)
        }
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
