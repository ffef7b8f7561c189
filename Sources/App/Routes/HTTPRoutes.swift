import Foundation
import Hummingbird
import Logging
import Store
import Workers

/// Builds the HTTP router: the public routes (health, webhooks, and the Prometheus exposition when
/// `ORCH_METRICS_PUBLIC` is set), then the admin routes in a group behind the bearer token.
enum HTTPRoutes {
    /// `fileOwnership` is the replica's file-ownership check (shared with its startup check, so
    /// they share one cached scan); one of its own is made when it is not given and the check is on.
    static func router(
        pool: ConnectionPool, configuration: AppConfiguration, readiness: ReadinessProbe? = nil,
        fileOwnership: FileOwnershipCheck? = nil
    ) -> Router<BasicRequestContext> {
        let readiness =
            readiness
            ?? ReadinessProbe(configuration: pool.configuration, logger: Logger(label: "orchestrator.readiness"))
        let fileOwnership =
            configuration.fsNormalizeEnabled
            ? fileOwnership
                ?? FileOwnershipCheck(
                    settings: configuration.fsNormalize, host: ProcessInfo.processInfo.hostName,
                    replicaID: configuration.replicaName, pool: pool, alerts: .off,
                    logger: Logger(label: "orchestrator.fs-ownership")) : nil
        _ = Telemetry.registry
        let router = Router()
        // Request counts and durations by route template (`http.route`), for /metrics/prometheus.
        router.add(middleware: MetricsMiddleware())
        WebhookRoutes(store: WebhookStore(pool: pool), configuration: configuration).register(on: router)
        router.addRoutes(HealthRoutes(readiness: readiness).endpoints)
        let prometheus = PrometheusRoutes(jobs: JobStore(pool: pool), tasks: TaskStore(pool: pool))
        if configuration.metricsPublic {
            router.addRoutes(prometheus.endpoints(context: BasicRequestContext.self))
        }

        // The token is checked before anything else, and errors inside keep the seed's body.
        let admin = router.group(context: AdminRequestContext.self)
            .add(middleware: APIErrorMiddleware())
            .add(middleware: BearerTokenMiddleware(token: configuration.adminToken))
        admin.addRoutes(TaskRoutes(pool: pool, budgets: configuration.file.budgets).endpoints)
        admin.addRoutes(RunEventRoutes(pool: pool).endpoints)
        admin.addRoutes(queueRoutes(pool: pool, configuration: configuration, fileOwnership: fileOwnership).endpoints)
        admin.addRoutes(
            LessonRoutes(lessons: LessonStore(pool: pool), enabled: configuration.lessons.enabled).endpoints)
        admin.addRoutes(
            SerialGateRoutes(
                tasks: TaskStore(pool: pool),
                alerts: Notifier(telegram: configuration.telegram, plane: configuration.planeAPI).alerts(pool: pool)
            ).endpoints)
        admin.addRoutes(
            DependencyRoutes(
                tasks: TaskStore(pool: pool), enabled: configuration.gates.taskDependencies,
                outOfScope: Set(
                    configuration.file.repos.filter { $0.gates.outOfScope.contains(.taskDependencies) }.map(\.repo))
            ).endpoints)
        admin.addRoutes(
            CoverageRoutes(coverage: CoverageStore(pool: pool), repos: Set(configuration.file.repos.map(\.repo)))
                .endpoints)
        admin.addRoutes(FileOwnershipRoutes(check: fileOwnership).endpoints)
        admin.addRoutes(MetricsRoutes(pool: pool, maxConcurrency: configuration.maxConcurrency).endpoints)
        if !configuration.metricsPublic {
            admin.addRoutes(prometheus.endpoints(context: AdminRequestContext.self))
        }
        return router
    }

    /// `/queue` with one block per subsystem, in the order the report has always listed them.
    private static func queueRoutes(
        pool: ConnectionPool, configuration: AppConfiguration, fileOwnership: FileOwnershipCheck?
    ) -> QueueRoutes {
        QueueRoutes(
            pool: pool, maxConcurrency: configuration.maxConcurrency, pollInterval: configuration.pollInterval,
            blocks: [
                ResilienceBlock(settings: configuration.breaker),
                BudgetBlock(limits: configuration.file.budgets),
                StopBlock(label: configuration.file.labels.stop),
                AutoLabelsBlock(labels: configuration.file.labels),
                BugFastTrackBlock(label: configuration.file.labels.bug),
                ReaperBlock(
                    enabled: configuration.reaperEnabled, heartbeatTTL: configuration.heartbeatTTL,
                    jobRetention: configuration.jobRetention, worktreeRetention: configuration.worktreeRetention,
                    agentLogRetention: configuration.agentLogRetention),
                LessonsBlock(settings: configuration.lessons),
                SerialGateBlock(enabled: configuration.gates.serialGate, repos: configuration.file.repos),
                TaskDepsBlock(enabled: configuration.gates.taskDependencies, repos: configuration.file.repos),
                PostDeployBlock(enabled: configuration.gates.postDeploy, repos: configuration.file.repos),
                WebhooksBlock(
                    planeSecretSet: configuration.webhookSecret(for: .plane) != nil,
                    giteaSecretSet: configuration.webhookSecret(for: .gitea) != nil,
                    insecure: configuration.insecureWebhooks, maxBodyBytes: configuration.webhookMaxBodyBytes),
                CoverageBlock(enabled: configuration.gates.coverageGate, repos: configuration.file.repos),
                MergeVerifyBlock(enabled: configuration.gates.mergeGate, repos: configuration.file.repos),
                ReconcileBlock(enabled: configuration.reconcileEnabled, interval: configuration.reconcileInterval),
                DiskMonitorBlock(enabled: configuration.diskMonitorEnabled, settings: configuration.diskMonitor),
                BuildCachePruneBlock(
                    enabled: configuration.buildCachePruneEnabled, settings: configuration.buildCachePrune),
                FileOwnershipBlock(
                    enabled: configuration.fsNormalizeEnabled, settings: configuration.fsNormalize,
                    check: fileOwnership),
            ])
    }
}
