import Foundation

/// The `fs_ownership` table: each replica's last file-ownership scan of its work dir, one row
/// per host and work dir, so any replica's `/queue` shows every host's.
public struct FileOwnershipStore: Sendable {
    let pool: ConnectionPool

    public init(pool: ConnectionPool) {
        self.pool = pool
    }

    /// One host's last scan, for `/queue`: the scan's figures with who took it, the healing
    /// command and the last opt-in chown.
    public struct HostScan: Sendable, Equatable, Encodable {
        public let host: String
        public let replica: String
        public let scan: OwnershipScan
        public let healing: String?
        /// Entries the last chown gave back; nil when none ran on this host.
        public let normalized: Int?
        public let normalizedAt: Date?

        enum CodingKeys: String, CodingKey {
            case host, replica, healing, normalized, normalizedAt
        }

        /// Flat, like the other per-host rows of `/queue` (`disk_monitor.paths`): the scan's keys
        /// beside `host` and `replica`, and `healing` always present (null when clean).
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(host, forKey: .host)
            try container.encode(replica, forKey: .replica)
            try scan.encode(to: encoder)
            try container.encode(healing, forKey: .healing)
            try container.encodeIfPresent(normalized, forKey: .normalized)
            try container.encodeIfPresent(normalizedAt, forKey: .normalizedAt)
        }
    }

    /// Records a scan as this host's last; `normalized` is how many entries a chown just gave
    /// back (nil when none ran: the last one's figures stay).
    public func record(
        host: String, replicaID: String, scan: OwnershipScan, healing: String?, normalized: Int? = nil
    ) async throws {
        try await pool.query(
            """
            INSERT INTO fs_ownership (host, workdir, replica_id, uid, gid, scanned, mismatched, agent_owned, unreadable,
                truncated, max_entries, samples, healing, scanned_at, duration_ms, last_error, normalized, normalized_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14, $15, $16, $17::int,
                CASE WHEN $17::int IS NULL THEN NULL ELSE now() END)
            ON CONFLICT (host, workdir) DO UPDATE SET replica_id = excluded.replica_id, uid = excluded.uid,
                gid = excluded.gid, scanned = excluded.scanned, mismatched = excluded.mismatched,
                agent_owned = excluded.agent_owned, unreadable = excluded.unreadable, truncated = excluded.truncated,
                max_entries = excluded.max_entries, samples = excluded.samples, healing = excluded.healing,
                scanned_at = excluded.scanned_at, duration_ms = excluded.duration_ms, last_error = excluded.last_error,
                normalized = coalesce(excluded.normalized, fs_ownership.normalized),
                normalized_at = coalesce(excluded.normalized_at, fs_ownership.normalized_at)
            """,
            [
                host, scan.workdir, replicaID, Int64(scan.uid), Int64(scan.gid), scan.scanned, scan.mismatched,
                scan.agentOwned, scan.unreadable, scan.truncated, scan.maxEntries, try JSONB(encoding: scan.samples),
                healing, scan.scannedAt, scan.durationMs, scan.error.map { String($0.prefix(2000)) }, normalized,
            ])
    }

    /// Every host's last scan, by host and work dir.
    public func scans() async throws -> [HostScan] {
        try await pool.query(
            """
            SELECT host, workdir, replica_id, uid, gid, scanned, mismatched, agent_owned, unreadable, truncated,
                max_entries, samples, healing, scanned_at, duration_ms, last_error, normalized, normalized_at
            FROM fs_ownership ORDER BY host, workdir
            """
        ).rows.map { row in
            let uid: Int64 = try row.decode("uid")
            let gid: Int64 = try row.decode("gid")
            let samples: JSONB = try row.decode("samples")
            return HostScan(
                host: try row.decode("host"), replica: try row.decode("replica_id"),
                scan: OwnershipScan(
                    workdir: try row.decode("workdir"), uid: UInt32(truncatingIfNeeded: uid),
                    gid: UInt32(truncatingIfNeeded: gid), scanned: try row.decode("scanned"),
                    mismatched: try row.decode("mismatched"), agentOwned: try row.decode("agent_owned"),
                    unreadable: try row.decode("unreadable"), truncated: try row.decode("truncated"),
                    maxEntries: try row.decode("max_entries"), samples: try samples.decode(),
                    scannedAt: try row.decode("scanned_at"), durationMs: try row.decode("duration_ms"),
                    error: try row.decode("last_error")),
                healing: try row.decode("healing"), normalized: try row.decode("normalized"),
                normalizedAt: try row.decode("normalized_at"))
        }
    }
}
