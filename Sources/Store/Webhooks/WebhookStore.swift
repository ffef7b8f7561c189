import Foundation

/// A delivery was already finished by another run of its job; what this run did is rolled back.
public struct DeliveryAlreadyFinished: Error, CustomStringConvertible, Equatable {
    public let deliveryID: Int64

    public var description: String { "webhook delivery \(deliveryID) was already finished" }
}

/// The `webhook_deliveries` inbox: stores a delivery and enqueues its processing atomically.
public struct WebhookStore: Sendable {
    let pool: ConnectionPool

    /// Creates the store.
    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// A verified, parsed delivery to record.
    public struct Delivery: Sendable {
        public var source: WebhookSource
        public var deliveryID: String?
        public var bodySHA256: String
        public var event: String
        public var payload: JSONB
        /// Set when the event is not one the orchestrator acts on; it is stored as `ignored`.
        public var ignoredReason: String?

        /// Creates a delivery.
        public init(
            source: WebhookSource, deliveryID: String?, bodySHA256: String, event: String, payload: JSONB,
            ignoredReason: String? = nil
        ) {
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

    /// Stores the delivery and, unless ignored, enqueues its processing job (and notifies the
    /// workers) in one statement, so one round trip and one commit per delivery. Two replicas
    /// receiving the same delivery at once: one stores it, the other gets `.duplicate`.
    public func record(_ delivery: Delivery) async throws -> Outcome {
        try await record(batch: [delivery])[0].get()
    }

    /// Records several deliveries with one statement and one commit (see ``GroupCommit``), each
    /// with the same effect and outcome as ``record(_:)`` would give it alone.
    ///
    /// Rows are inserted in a fixed key order, so two replicas writing overlapping batches wait
    /// for each other instead of deadlocking. If a batch of several fails for a reason other than
    /// a lost connection (one body PostgreSQL's `jsonb` refuses, say), every delivery is retried
    /// alone so that one bad delivery fails only itself. A batch of one throws its error.
    public func record(batch deliveries: [Delivery]) async throws -> [Result<Outcome, any Error>] {
        do {
            return try await insert(deliveries).map { .success($0) }
        } catch let error as PostgresError
            where deliveries.count > 1 && !error.isConnectionLost && error.kind != .poolTimeout
        {
            var results: [Result<Outcome, any Error>] = []
            for delivery in deliveries {
                do {
                    results.append(.success(try await insert([delivery])[0]))
                } catch {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    private func insert(_ deliveries: [Delivery]) async throws -> [Outcome] {
        let order = deliveries.indices.sorted {
            let a = deliveries[$0], b = deliveries[$1]
            return (a.source.rawValue, a.bodySHA256, a.deliveryID ?? "") < (
                b.source.rawValue, b.bodySHA256, b.deliveryID ?? ""
            )
        }
        let sorted = order.map { deliveries[$0] }
        // Job ids are drawn first so each delivery row names its job without a second write. The
        // sequence is looked up once per statement (an InitPlan), not once per row: by name per row
        // it cost a catalog lookup and a text-to-regclass cast for every delivery.
        let rows = try await pool.query(
            """
            WITH job_sequence AS (
                SELECT pg_get_serial_sequence('jobs', 'id')::regclass AS seq
            ), input AS (
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                    WITH ORDINALITY AS i (source, delivery_id, body_sha256, event, payload, reason, ord)
            ), delivery AS (
                INSERT INTO webhook_deliveries (source, delivery_id, body_sha256, event, status, reason, payload, job_id)
                SELECT source, delivery_id, body_sha256, event, CASE WHEN reason IS NULL THEN $8 ELSE $9 END,
                       reason, payload::jsonb, CASE WHEN reason IS NULL THEN nextval((SELECT seq FROM job_sequence)) END
                FROM input ORDER BY ord
                ON CONFLICT DO NOTHING
                RETURNING id, job_id, source, delivery_id, body_sha256
            ), job AS (
                INSERT INTO jobs (id, kind, queue, payload, max_attempts, dedupe_key)
                SELECT job_id, $7, $10, jsonb_build_object($11::text, id), $12::int, $13::text || id
                FROM delivery WHERE job_id IS NOT NULL
                RETURNING id
            ), notified AS (
                SELECT pg_notify('orch_jobs', 'default') WHERE EXISTS (SELECT 1 FROM job)
            )
            SELECT d.id, d.job_id, d.source, d.delivery_id, d.body_sha256, (SELECT count(*) FROM notified) AS notified
            FROM delivery d
            """,
            [
                PostgresArray(sorted.map { $0.source }), PostgresArray(sorted.map { $0.deliveryID }),
                PostgresArray(sorted.map { $0.bodySHA256 }), PostgresArray(sorted.map { $0.event }),
                PostgresArray(sorted.map { $0.payload.text }), PostgresArray(sorted.map { $0.ignoredReason }),
                ProcessWebhookJob.kind, DeliveryStatus.pending, DeliveryStatus.ignored, ProcessWebhookJob.queue,
                ProcessWebhookJob.deliveryIDField, ProcessWebhookJob.maxAttempts, ProcessWebhookJob.dedupePrefix,
            ])
        // Match stored rows back to deliveries by their key. A delivery with no row was a duplicate
        // (of an earlier delivery or of another one in this batch).
        struct Key: Hashable { let source: WebhookSource, deliveryID: String?, body: String }
        var stored: [Key: [(id: Int64, jobID: Int64?)]] = [:]
        for row in rows.rows {
            let key = Key(
                source: try row.decode("source"), deliveryID: try row.decode("delivery_id"),
                body: try row.decode("body_sha256"))
            stored[key, default: []].append((try row.decode("id"), try row.decode("job_id")))
        }
        var outcomes = [Outcome](repeating: .duplicate, count: deliveries.count)
        for index in order {
            let delivery = deliveries[index]
            let key = Key(source: delivery.source, deliveryID: delivery.deliveryID, body: delivery.bodySHA256)
            guard let row = stored[key]?.first else { continue }
            stored[key]?.removeFirst()
            outcomes[index] = row.jobID.map { .accepted(deliveryID: row.id, jobID: $0) } ?? .ignored(deliveryID: row.id)
        }
        return outcomes
    }

    /// A stored delivery, for its processing job.
    public struct Stored: Sendable {
        public let id: Int64
        public let source: WebhookSource
        public let event: String
        public let status: DeliveryStatus
        public let payload: JSONB
    }

    /// One stored delivery.
    public func delivery(id: Int64) async throws -> Stored? {
        guard
            let row = try await pool.query(
                "SELECT id, source, event, status, payload FROM webhook_deliveries WHERE id = $1", [id]
            ).first
        else { return nil }
        return Stored(
            id: try row.decode("id"), source: try row.decode("source"), event: try row.decode("event"),
            status: try row.decode("status"), payload: try row.decode("payload"))
    }

    /// Records how processing ended: `processed` (with an optional note) or `ignored` with the
    /// reason. Only a delivery still `pending`: one a command already finished in its own
    /// transaction (``finish(id:status:reason:on:)``) keeps that outcome.
    public func finish(id: Int64, status: DeliveryStatus, reason: String?) async throws {
        try await pool.query(Self.finishStatement, [id, status, reason, DeliveryStatus.pending])
    }

    /// Records how processing ended on the caller's connection, inside the transaction that
    /// applies the delivery's effect (a command), so the effect and "done" commit together and a
    /// crash between them can never replay it. Throws `DeliveryAlreadyFinished` — rolling the
    /// effect back — when the delivery is no longer pending (another run of its job got there first).
    public static func finish(
        id: Int64, status: DeliveryStatus, reason: String?, on connection: Connection
    ) async throws {
        guard
            try await connection.query(finishStatement, [id, status, reason, DeliveryStatus.pending]).affectedRows == 1
        else {
            throw DeliveryAlreadyFinished(deliveryID: id)
        }
    }

    private static let finishStatement = """
        UPDATE webhook_deliveries SET status = $2, reason = $3, processed_at = now() WHERE id = $1 AND status = $4
        """

    /// How long deliveries are kept by default; also how long a redelivery is recognised as a
    /// duplicate (the dedupe keys live in these rows).
    public static let defaultRetention: Duration = .seconds(30 * 86400)

    /// Deletes finished deliveries (`processed`, `ignored`, `failed`) received longer than
    /// `retention` ago, `batchSize` rows per statement so no long lock or huge transaction is
    /// held; never a `pending` one, whose job has yet to read it. Returns how many went.
    public func prune(retention: Duration, batchSize: Int = 1000) async throws -> Int {
        try await pool.deleteInBatches(
            """
            DELETE FROM webhook_deliveries WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE status IN ('processed', 'ignored', 'failed')
                  AND received_at < now() - make_interval(secs => $1::float8)
                ORDER BY received_at
                LIMIT $2 FOR UPDATE SKIP LOCKED)
            """,
            retention: retention, batchSize: batchSize)
    }

    /// Deliveries stored, by source and status (for `/queue` and tests).
    public func counts() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await pool.query(
            "SELECT source || '.' || status AS key, count(*) AS n FROM webhook_deliveries GROUP BY 1"
        ).rows {
            counts[try row.decode("key")] = try row.decode("n")
        }
        return counts
    }
}
