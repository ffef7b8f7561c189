import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Store
import Workers

/// `orchestrator bench …`: benchmarks that print what they measured.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks against the configured database.",
        subcommands: [QueueBenchCommand.self, RoundTripBenchCommand.self]
    )
}

/// `orchestrator bench queue`: no-op jobs through the real worker, claim path and completer.
///
/// The no-op kind is inline (run inside the claim's transaction, one write per job) unless
/// `--leased` asks for the leased path (claimed and committed, then completed: two writes).
///
/// `--jobs` mode enqueues N jobs, then W workers drain them; `--duration` mode runs one producer
/// enqueueing at `--rate` jobs/s (one transaction each, like webhook-driven load) for S seconds
/// while W workers consume. Latency is enqueue→claim from database timestamps (`claimed_at − run_at`).
struct QueueBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Queue benchmark: prints jobs/s and enqueue→claim latency p50/p95/p99."
    )

    @Option(help: "Jobs to enqueue and drain (drain mode).")
    var jobs: Int = 20000

    @Option(help: "Workers (each like one replica's queue worker).")
    var workers: Int = 5

    @Option(help: "Jobs claimed per round trip, and each worker's concurrency.")
    var batch: Int = 10

    @Option(help: "Seconds to run a steady producer instead of draining a backlog.")
    var duration: Double?

    @Option(help: "Producer rate in jobs/s (duration mode).")
    var rate: Double = 500

    @Flag(help: "Keep the benchmark's job rows instead of deleting them.")
    var keep = false

    @Flag(help: "Run leased jobs (claimed, then completed) instead of inline ones.")
    var leased = false

    func validate() throws {
        guard jobs > 0, workers > 0, batch > 0, rate > 0 else {
            throw ValidationError("--jobs, --workers, --batch and --rate must be positive")
        }
        if let duration, duration <= 0 { throw ValidationError("--duration must be positive") }
    }

    func run() async throws {
        let configuration = try loadConfiguration()
        let logger = makeLogger(
            label: "orchestrator.bench", level: configuration.logLevel == .info ? .warning : configuration.logLevel)
        var database = configuration.database(applicationName: "orchestrator-bench")
        database.maxConnections = workers * 2 + 4
        let pool = ConnectionPool(configuration: database, logger: logger)
        do {
            try await Migrator(pool: pool, directory: Migrator.defaultDirectory(), logger: logger).migrate()
            try await measure(pool: pool, logger: logger)
        } catch {
            await pool.close()
            throw error
        }
        await pool.close()
    }

    private func measure(pool: ConnectionPool, logger: Logger) async throws {
        let queue = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        let store = JobStore(pool: pool)
        let statistics = QueueStatistics(pool: pool)
        let replicas = ReplicaStore(pool: pool)
        let host = ProcessInfo.processInfo.hostName
        let pid = Int(ProcessInfo.processInfo.processIdentifier)
        var registry = JobRegistry()
        let kind = leased ? "bench.leased" : "bench.noop"
        registry.register(kind, inline: !leased) { _ in }

        let listener = Listener(pool: pool, logger: logger)
        var services: [any Service] = [ListenerService(listener: listener)]
        var ids: [String] = []
        for index in 0..<workers {
            let id = "\(queue)-w\(index)"
            ids.append(id)
            try await replicas.register(id: id, name: id, host: host, pid: pid, role: "bench")
            let identity = ReplicaIdentity(id: id, name: id, host: host, pid: pid, role: "bench")
            let worker = QueueWorker(
                configuration: .init(
                    replicaID: id, queues: [queue], maxConcurrency: batch, batchSize: batch, pollInterval: .seconds(1),
                    leaseDuration: .seconds(30), gracePeriod: .seconds(5)),
                store: store, registry: registry, listener: listener, logger: logger, identity: identity)
            services.append(
                ReplicaHeartbeat(
                    identity: identity, interval: .seconds(2), lease: .seconds(30),
                    session: DedicatedSession(
                        configuration: pool.configuration, name: "heartbeat \(index)", timeout: .seconds(2),
                        logger: logger),
                    replicas: replicas, worker: worker, logger: logger))
            services.append(worker)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) }, gracefulShutdownSignals: [], logger: logger))
        let clock = ContinuousClock()
        let mode = duration == nil ? "drain" : "steady"
        print(
            "bench queue: mode=\(mode) path=\(leased ? "leased" : "inline") workers=\(workers) batch=\(batch)"
                + (duration.map { " duration=\($0)s rate=\(rate)/s" } ?? " jobs=\(jobs)"))

        if duration == nil {
            let started = clock.now
            var remaining = jobs
            while remaining > 0 {
                let chunk = min(remaining, 5000)
                try await store.enqueue(Array(repeating: NewJob(kind: kind, queue: queue), count: chunk))
                remaining -= chunk
            }
            let enqueueSeconds = (clock.now - started).seconds
            print(
                String(
                    format: "enqueued %d jobs in %.2f s (%.0f jobs/s, batched inserts)", jobs, enqueueSeconds,
                    Double(jobs) / enqueueSeconds))
        }

        let wallStart = clock.now
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            if let duration {
                try await produce(store: store, queue: queue, kind: kind, seconds: duration)
                try await waitUntilDrained(statistics: statistics, queue: queue, limit: .seconds(30))
            } else {
                try await waitUntilDrained(statistics: statistics, queue: queue, limit: .seconds(600))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let wallSeconds = (clock.now - wallStart).seconds

        let span = try await statistics.completionSpan(queue: queue)
        let latency = try await statistics.claimLatencyMilliseconds(queue: queue)
        if duration == nil {
            print(
                String(
                    format:
                        "drained %d jobs: %.0f jobs/s (database span first claim → last completion %.2f s; wall %.2f s)",
                    span.completed, Double(span.completed) / max(span.seconds, 0.001), span.seconds, wallSeconds))
        } else {
            print(
                String(
                    format: "completed %d jobs: %.0f jobs/s offered load %.0f/s (wall %.2f s)",
                    span.completed, Double(span.completed) / max(span.seconds, 0.001), rate, wallSeconds))
        }
        print(
            String(
                format: "enqueue→claim latency ms: p50 %.2f  p95 %.2f  p99 %.2f  max %.2f  (n=%d)",
                latency.p50, latency.p95, latency.p99, latency.max, latency.count))
        for id in ids { try? await replicas.markStopped(id: id) }
        if !keep { try await statistics.deleteQueue(queue) }
    }

    /// One producer, one transaction per job, paced to `rate`.
    private func produce(store: JobStore, queue: String, kind: String, seconds: Double) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let end = start.advanced(by: .milliseconds(Int64(seconds * 1000)))
        let interval = 1.0 / rate
        var produced = 0
        while clock.now < end {
            try await store.enqueue(NewJob(kind: kind, queue: queue))
            produced += 1
            let due = start.advanced(by: .microseconds(Int64(Double(produced) * interval * 1_000_000)))
            if due > clock.now { try await clock.sleep(until: due) }
        }
        print(
            String(
                format: "produced %d jobs in %.2f s (%.0f jobs/s)", produced, (clock.now - start).seconds,
                Double(produced) / (clock.now - start).seconds))
    }

    private func waitUntilDrained(statistics: QueueStatistics, queue: String, limit: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        while try await statistics.hasUnfinished(queue: queue) {
            guard clock.now < deadline else { throw ValidationError("queue did not drain within \(limit)") }
            try await clock.sleep(for: .milliseconds(50))
        }
    }
}

/// `orchestrator bench roundtrip`: sequential `SELECT 1` through the pool, to see what one database
/// round trip costs from Swift (thread hops included) next to `pgbench` on the same server.
struct RoundTripBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roundtrip",
        abstract: "Sequential SELECT 1 through the connection pool: prints round trips/s and mean latency."
    )

    @Option(help: "Round trips to time.")
    var count: Int = 5000

    func run() async throws {
        let configuration = try loadConfiguration()
        let logger = makeLogger(label: "orchestrator.bench", level: .warning)
        let pool = ConnectionPool(
            configuration: configuration.database(applicationName: "orchestrator-bench"), logger: logger)
        do {
            try await pool.query("SELECT 1")
            let clock = ContinuousClock()
            let started = clock.now
            for _ in 0..<count { try await pool.query("SELECT 1") }
            let seconds = (clock.now - started).seconds
            print(
                String(
                    format: "roundtrip: %d × SELECT 1 in %.2f s: %.0f/s, mean %.3f ms", count, seconds,
                    Double(count) / seconds, seconds * 1000 / Double(count)))
        } catch {
            await pool.close()
            throw error
        }
        await pool.close()
    }
}
