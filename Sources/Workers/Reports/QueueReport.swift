import Store

/// `GET /queue`: job counts, the live replicas and their leader, one block per subsystem, and
/// the latest jobs.
public struct QueueReport: Encodable, Sendable {
    /// A block's key and figures, as read.
    public struct Block: Sendable {
        public let key: String
        public let body: any Encodable & Sendable

        public init(key: String, body: any Encodable & Sendable) {
            self.key = key
            self.body = body
        }
    }

    public let counts: [String: Int]
    public let maxConcurrency: Int
    /// Seconds between polls of an idle worker.
    public let pollInterval: Double
    public let replicas: [Replica]
    public let leader: String?
    /// In the order they were listed.
    public let blocks: [Block]
    public let recent: [Job]

    public init(
        counts: [String: Int], maxConcurrency: Int, pollInterval: Double, replicas: [Replica], leader: String?,
        blocks: [Block],
        recent: [Job]
    ) {
        self.counts = counts
        self.maxConcurrency = maxConcurrency
        self.pollInterval = pollInterval
        self.replicas = replicas
        self.leader = leader
        self.blocks = blocks
        self.recent = recent
    }

    /// Reads every figure now: the queue's, the replicas', then each block's in turn.
    public static func read(
        from pool: ConnectionPool, maxConcurrency: Int, pollInterval: Duration, blocks: [any QueueReportBlock]
    ) async throws -> QueueReport {
        let jobs = JobStore(pool: pool)
        let counts = try await jobs.countsByStatus()
        let replicas = try await ReplicaStore(pool: pool).live()
        let leader = replicas.first { $0.leaderSince != nil }?.id
        var read: [Block] = []
        for block in blocks {
            read.append(Block(key: block.key, body: try await block.read(from: pool, leader: leader)))
        }
        return QueueReport(
            counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            maxConcurrency: maxConcurrency,
            pollInterval: pollInterval.seconds, replicas: replicas, leader: leader, blocks: read,
            recent: try await jobs.recent(limit: 10))
    }

    /// The fixed keys, then one key per block (keys only known at run time), then `recent`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ReportKey.self)
        try container.encode(counts, forKey: "counts")
        try container.encode(maxConcurrency, forKey: "max_concurrency")
        try container.encode(pollInterval, forKey: "poll_interval")
        try container.encode(replicas, forKey: "replicas")
        try container.encodeIfPresent(leader, forKey: "leader")
        for block in blocks {
            try container.encode(block.body, forKey: ReportKey(block.key))
        }
        try container.encode(recent, forKey: "recent")
    }
}
