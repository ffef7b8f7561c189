import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Store
import Workers

/// Wires one replica: pool, migrations, registration, startup recovery and the service group.
enum ReplicaRuntime {
    static func run(
        configuration: AppConfiguration, role: ReplicaRole, migrate: Bool, logger baseLogger: Logger
    ) async throws {
        let pid = Int(ProcessInfo.processInfo.processIdentifier)
        let host = ProcessInfo.processInfo.hostName
        let replicaID = ReplicaIdentity.makeID(name: configuration.replicaName)
        var logger = baseLogger
        logger[metadataKey: "replica.id"] = "\(replicaID)"
        let pool = ConnectionPool(
            configuration: configuration.database(applicationName: "orchestrator \(replicaID)".prefix(63).description),
            logger: logger)
        do {
            try await waitForDatabase(pool: pool, logger: logger)
            if migrate {
                try await Migrator(pool: pool, directory: Migrator.defaultDirectory(), logger: logger).migrate()
            }
            try await serve(
                configuration: configuration, role: role, replicaID: replicaID, pid: pid, host: host, pool: pool,
                logger: logger)
        } catch {
            await pool.close()
            throw error
        }
        await pool.close()
    }

    /// Waits (with backoff, up to a minute) for the database, so replicas can start before it.
    private static func waitForDatabase(pool: ConnectionPool, logger: Logger) async throws {
        var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while true {
            do {
                try await pool.query("SELECT 1")
                return
            } catch let error as PostgresError where error.isConnectionLost && ContinuousClock.now < deadline {
                logger.warning("database not reachable yet", metadata: ["db.error": "\(error)"])
                try await Task.sleep(for: backoff.next())
            }
        }
    }

    private static func serve(
        configuration: AppConfiguration, role: ReplicaRole, replicaID: String, pid: Int, host: String,
        pool: ConnectionPool, logger: Logger
    ) async throws {
        let jobs = JobStore(pool: pool)
        let replicas = ReplicaStore(pool: pool)
        let identity = ReplicaIdentity(
            id: replicaID, name: configuration.replicaName, host: host, pid: pid, role: role.rawValue)
        let database = configuration.database(applicationName: "orchestrator \(replicaID)".prefix(63).description)
        try await replicas.register(
            id: replicaID, name: configuration.replicaName, host: host, pid: pid, role: role.rawValue)
        let notifier = Notifier(
            telegram: configuration.telegram,
            plane: configuration.planeAPI)
        let alerts = notifier.alerts(pool: pool)
        let workspace = Workspace(root: configuration.workdir)
        let sweeper = WorkspaceSweeper(
            workspace: workspace, repos: configuration.file.repos, pool: pool, logger: logger)
        let reaper = replicaReaper(
            configuration: configuration, sweeper: sweeper, identity: identity, pool: pool, logger: logger)
        let fileOwnership =
            configuration.fsNormalizeEnabled
            ? FileOwnershipCheck(
                settings: configuration.fsNormalize, host: host, replicaID: replicaID, pool: pool, alerts: alerts,
                logger: logger) : nil
        try await StartupHousekeeping.run(
            startupSteps(
                configuration: configuration, identity: identity, pool: pool, alerts: alerts, reaper: reaper,
                fileOwnership: fileOwnership, logger: logger),
            logger: logger)

        try await configureSerialGates(configuration, pool: pool, logger: logger)

        let listener = Listener(pool: pool, logger: logger)
        var services: [any Service] = [ListenerService(listener: listener)]
        var worker: QueueWorker?
        // Every replica prunes the files on its own disk, whatever its role.
        if let reaper { services.append(reaper) }
        if role.runsWorkers {
            services.append(sweeper)
            var registry = JobRegistry()
            registry.register(
                WebhookProcessor(
                    pool: pool, repos: configuration.file.repos, labels: configuration.file.labels,
                    planeAPI: configuration.planeAPI, dependencies: configuration.gates.taskDependencies
                ).handler)
            registry.register(
                StageRunner(
                    settings: .init(
                        repos: configuration.file.repos,
                        agents: configuration.file.agents,
                        promptTemplates: configuration.promptsDirectory, breaker: configuration.breaker,
                        gitea: configuration.giteaAPI,
                        ciPollInterval: configuration.ciPollInterval, switches: configuration.gates,
                        budgets: configuration.file.budgets),
                    pool: pool,
                    launcher: AgentLauncher(
                        settings: .init(
                            logDirectory: configuration.workdir + "/logs", replicaID: replicaID, host: host,
                            maxLogBytes: configuration.agentLogMaxBytes, agents: configuration.file.agents),
                        pool: pool, logger: logger),
                    workspace: workspace, alerts: alerts
                ).handler)
            registry.register(
                PostDeployWatch(
                    repos: configuration.file.repos, enabled: configuration.gates.postDeploy, pool: pool, alerts: alerts
                ).handler)
            for handler in notifier.handlers(pool: pool) { registry.register(handler) }
            let moved = try await Notifier.moveQueuedJobsToChannelQueues(pool: pool)
            if moved > 0 {
                logger.notice(
                    "moved queued notification jobs to their channel's queue", metadata: ["job.count": "\(moved)"])
            }
            if configuration.diagnosticJobs {
                try await DiagnosticStore(pool: pool).prepare()
                DiagnosticJobs.register(in: &registry, pool: pool, replicaID: replicaID)
            }
            worker = QueueWorker(
                configuration: .init(
                    replicaID: replicaID, queues: notifier.workerQueues(configuration.queues),
                    maxConcurrency: configuration.maxConcurrency,
                    batchSize: min(configuration.maxConcurrency, 10), pollInterval: configuration.pollInterval,
                    leaseDuration: configuration.heartbeatTTL, gracePeriod: configuration.shutdownGrace,
                    retryInitial: configuration.retryInitial, retryMaximum: configuration.retryMaximum),
                store: jobs, registry: registry, listener: listener, logger: logger, identity: identity)
        }
        // Liveness never waits behind the pool: the heartbeat and the leader lock have sessions
        // (and threads) of their own, with statement timeouts well under the TTL.
        services.append(
            ReplicaHeartbeat(
                identity: identity, interval: configuration.heartbeatInterval, lease: configuration.heartbeatTTL,
                session: DedicatedSession(
                    configuration: database, name: "heartbeat", timeout: configuration.heartbeatTimeout, logger: logger),
                replicas: replicas, worker: worker, logger: logger))
        if configuration.diskMonitorEnabled {
            services.append(
                DiskMonitor(
                    settings: configuration.diskMonitor, host: host, replicaID: replicaID, pool: pool, alerts: alerts,
                    logger: logger))
        }
        if role.runsWorkers {
            var duties = maintenanceDuties(
                configuration: configuration, pool: pool, replicaID: replicaID, alerts: alerts, logger: logger)
            if !notifier.channels.isEmpty { duties.append(notifier.duty(pool: pool, interval: .seconds(1))) }
            let leaderSession = DedicatedSession(
                configuration: database, name: "leader", timeout: configuration.heartbeatTimeout,
                settings: DedicatedSession.leaderSettings(
                    idleTimeout: max(configuration.heartbeatTTL, configuration.electionInterval * 2)),
                logger: logger)
            services.append(
                LeaderElector(
                    identity: identity, session: leaderSession, pool: pool, interval: configuration.electionInterval,
                    duties: duties,
                    logger: logger))
        }
        if let worker { services.append(worker) }
        if role.servesHTTP {
            services.append(
                Application(
                    router: HTTPRoutes.router(pool: pool, configuration: configuration, fileOwnership: fileOwnership),
                    configuration: .init(
                        address: .hostname(configuration.host, port: configuration.port), serverName: "orchestrator"),
                    logger: logger))
        }
        logger.info(
            "replica starting",
            metadata: [
                "replica.role": "\(role.rawValue)", "replica.name": "\(configuration.replicaName)",
                "replica.pid": "\(pid)",
            ])
        // Shutdown runs in reverse order: HTTP first, then the worker hands its jobs back, then the
        // leader steps down, the heartbeat marks the replica stopped, and the listener closes last.
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    /// Writes the configured serial-gate limits and lets waiting tasks go where a limit was raised.
    private static func configureSerialGates(
        _ configuration: AppConfiguration, pool: ConnectionPool, logger: Logger
    ) async throws {
        let repos = configuration.file.repos
        try await RepositoryGateStore(pool: pool).configure(configuration.serialGateLimits)
        let tasks = TaskStore(pool: pool)
        for repo in repos {
            let started = try await tasks.openSerialGate(repo: repo.repo)
            if !started.isEmpty {
                logger.notice(
                    "serial gate opened at startup", metadata: ["repo": "\(repo.repo)", "tasks": "\(started)"])
            }
        }
    }
}
