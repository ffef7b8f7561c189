import Foundation
import Logging
import ServiceLifecycle
import Store
import Synchronization

/// Claims jobs from the shared queue and runs their handlers with bounded concurrency.
///
/// Woken by `orch_jobs` notifications (a hint) with a polling backstop, and after every listener
/// reconnect. On graceful shutdown it stops claiming, lets running jobs finish for `gracePeriod`,
/// then stops the rest and hands them back to the queue so another replica starts them at once.
///
/// One file over 300 lines, on purpose: the claim loop, a job's execution and the recording of
/// its outcome share the worker's state (running jobs, held leases, completions in flight), and
/// reading them together is how the fencing rules are checked.
public final class QueueWorker: Service, Sendable {
    /// Tuning for one worker.
    public struct Configuration: Sendable {
        /// This process's replica id (the `locked_by` of its claims).
        public var replicaID: String
        /// Queues to claim from.
        public var queues: [String]
        /// Jobs run at once (`ORCH_MAX_CONCURRENCY`).
        public var maxConcurrency: Int
        /// Most jobs claimed per round trip (at most `JobStore.maximumClaimBatch`).
        public var batchSize: Int
        /// Backstop poll when no notification arrives.
        public var pollInterval: Duration
        /// Lease granted by a claim; the heartbeat extends it while the job runs.
        public var leaseDuration: Duration
        /// How long running jobs may finish after shutdown starts.
        public var gracePeriod: Duration
        /// First retry delay; doubles per attempt, with jitter, up to `retryMaximum`.
        public var retryInitial: Duration
        /// Cap on the retry delay.
        public var retryMaximum: Duration

        public init(
            replicaID: String, queues: [String] = ["default"], maxConcurrency: Int = 4, batchSize: Int = 10,
            pollInterval: Duration = .seconds(2), leaseDuration: Duration = .seconds(30),
            gracePeriod: Duration = .seconds(20),
            retryInitial: Duration = .seconds(1), retryMaximum: Duration = .seconds(300)
        ) {
            self.replicaID = replicaID
            self.queues = queues
            self.maxConcurrency = max(1, maxConcurrency)
            self.batchSize = max(1, batchSize)
            self.pollInterval = pollInterval
            self.leaseDuration = leaseDuration
            self.gracePeriod = gracePeriod
            self.retryInitial = retryInitial
            self.retryMaximum = retryMaximum
        }
    }

    enum Outcome: Sendable {
        case succeeded
        /// The handler's outcome transaction found the fence broken: nothing was applied.
        case superseded(String)
        case threw(String, retryable: Bool)
        case postponed(JobPostponed)
        case timedOut
        case stopped(StopReason)
    }

    let configuration: Configuration
    private let store: JobStore
    let registry: JobRegistry
    private let listener: Listener?
    let logger: Logger
    private let finished = FinishedJobs()
    let metrics = JobMetrics()
    /// How often job deadlines are checked; a timeout fires at most this late.
    static let timeoutResolution: Duration = .milliseconds(100)
    private let running: RunningJobs
    private let claimedTotal = Atomic<Int>(0)
    private let paused = Atomic<Bool>(false)
    /// Set by graceful shutdown: claim nothing more, only write what finishes.
    private let stopping = Atomic<Bool>(false)
    /// Whose claims these are; shared with the heartbeat, which renews it after a replica comes back.
    public let identity: ReplicaIdentity

    /// Creates a worker. Without a listener it relies on polling alone. `identity` is the
    /// replica's (shared with its heartbeat); by default one for `configuration.replicaID`.
    public init(
        configuration: Configuration, store: JobStore, registry: JobRegistry, listener: Listener?, logger: Logger,
        identity: ReplicaIdentity? = nil
    ) {
        self.identity =
            identity
            ?? ReplicaIdentity(
                id: configuration.replicaID, name: configuration.replicaID, host: "", pid: 0, role: "worker")
        self.configuration = configuration
        self.store = store
        self.registry = registry
        self.listener = listener
        var logger = logger
        logger[metadataKey: "replica.id"] = "\(configuration.replicaID)"
        self.logger = logger
        self.running = RunningJobs()
    }

    /// Jobs this worker is running now.
    public var runningCount: Int { running.count }

    /// Jobs claimed since start.
    public var claimedCount: Int { claimedTotal.load(ordering: .relaxed) }

    /// Asks this worker to stop the given jobs if it runs them (cancel requests).
    public func cancel(jobIDs: [Int64]) {
        running.signals(for: jobIDs).forEach { $0.fire(.cancelRequested) }
    }

    /// The leases of the jobs this worker runs under `replicaID` (what its heartbeat extends).
    public func heldLeases(replicaID: String) -> [JobLease] {
        running.leases(replicaID: replicaID)
    }

    /// Stops the handlers of jobs that are no longer this replica's; nothing of theirs is written.
    public func stopLost(jobIDs: [Int64]) {
        running.signals(for: jobIDs).forEach { $0.fire(.leaseLost) }
    }

    /// Stops claiming until `resumeClaiming()` (the replica is registering again).
    public func pauseClaiming() { paused.store(true, ordering: .relaxed) }

    /// Claims again, under the identity's current id.
    public func resumeClaiming() { paused.store(false, ordering: .relaxed) }

    /// Abandons every running job: handlers stopped, nothing applied; jobs still held are handed back.
    public func abandonAll() {
        running.allSignals.forEach { $0.fire(.abandoned) }
    }

    public func run() async throws {
        let session = store.makeClaimSession(name: "claims", holdLimit: configuration.leaseDuration, logger: logger)
        await run(claimingOn: session)
        await session.close()
    }

    private func run(claimingOn session: DedicatedSession) async {
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let events = listener?.events()
        let queues = Set(configuration.queues)
        logger.info(
            "queue worker started",
            metadata: [
                "worker.queues": "\(configuration.queues)", "worker.concurrency": "\(configuration.maxConcurrency)",
                "worker.kinds": "\(registry.kinds)",
            ])
        await withDiscardingTaskGroup { group in
            if let events {
                group.addTask {
                    for await event in events {
                        switch event {
                        case .reconnected:
                            wake.yield()
                        case .notification(.jobs, let queue) where queues.contains(queue):
                            wake.yield()
                        case .notification(.cancel, let payload):
                            if let id = Int64(payload) { self.cancel(jobIDs: [id]) }
                        case .notification:
                            break
                        }
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.pollInterval)
                    wake.yield()
                }
            }
            // One watchdog for every job's timeout, rather than a timer task per job.
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.timeoutResolution)
                    self.running.overdue(at: .now).forEach { $0.fire(.timedOut) }
                }
            }

            await withGracefulShutdownHandler {
                await self.claimLoop(wakes: wakes, wake: wake, session: session, group: &group)
            } onGracefulShutdown: {
                self.stopping.store(true, ordering: .relaxed)
                wake.finish()
            }
            await self.drain()
            group.cancelAll()
        }
        logger.info("queue worker stopped")
    }

    private func claimLoop(
        wakes: AsyncStream<Void>, wake: AsyncStream<Void>.Continuation, session: DedicatedSession,
        group: inout DiscardingTaskGroup
    ) async {
        var failures = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
        let batchSize = min(configuration.batchSize, JobStore.maximumClaimBatch)
        let batch = min(batchSize, configuration.maxConcurrency)
        let inlineKinds = registry.inlineKinds
        // Inline jobs run inside the claim's transaction (docs/architecture.md, "Inline jobs").
        // `held` is the outcomes of the batch the session's open transaction holds, written by
        // the next round trip; `inlineClaims` says whether to claim that way: after a batch that
        // was all inline, until a batch comes back mixed.
        var held: [JobStore.InlineResult]?
        var inlineClaims = !inlineKinds.isEmpty
        for await _ in wakes {
            var queueExhausted = false
            while !Task.isCancelled {
                var done = finished.takeAll()
                var free = configuration.maxConcurrency - (runningCount - done.count)
                if !queueExhausted, free > 0, free < batch {
                    // Busy with only part of a batch free: jobs claimed together finish together,
                    // so wait a moment (until a whole batch is free, at most 2 ms) and then
                    // complete and claim a whole batch in one round trip. Checked every 100 µs so
                    // a batch of quick jobs is not held for the full 2 ms. An idle worker (every
                    // slot free) never waits.
                    let deadline = ContinuousClock.now.advanced(by: .milliseconds(2))
                    repeat {
                        try? await Task.sleep(for: .microseconds(100))
                        done += finished.takeAll()
                        free = configuration.maxConcurrency - (runningCount - done.count)
                    } while free < batch && ContinuousClock.now < deadline && !Task.isCancelled
                }
                // Shutting down, nothing more is claimed: a worker busy with leased jobs would
                // stop for want of free slots, but inline jobs take none.
                let claiming =
                    !queueExhausted && !paused.load(ordering: .relaxed) && !stopping.load(ordering: .relaxed)
                let limit = claiming ? min(max(free, 0), batchSize) : 0
                if done.isEmpty && limit == 0 && held == nil { break }
                let jobs: [Job]
                // Completions go by the id they were claimed under; a replica that registered
                // again completes nothing of its former life (those jobs were rescued).
                let replicaID = identity.id
                let stale = done.filter { $0.lease.replicaID != replicaID }
                let current = done.filter { $0.lease.replicaID == replicaID }
                if !stale.isEmpty { settle(stale, completed: []) }
                do {
                    if held != nil || (inlineClaims && limit > 0) {
                        let outcomes = held ?? []
                        let holding = held != nil
                        held = nil
                        let result: JobStore.InlineClaim
                        do {
                            result = try await store.finishAndClaim(
                                held: outcomes, holding: holding, finished: current.map(\.lease),
                                replicaID: replicaID, queue: configuration.queues[0], limit: limit,
                                lease: configuration.leaseDuration, inlineKinds: inlineKinds, on: session)
                        } catch {
                            if !outcomes.isEmpty { lostInline(outcomes, error: error) }
                            throw error
                        }
                        settle(current, completed: result.completed)
                        countInline(outcomes, written: result.written)
                        if let error = result.leaseError {
                            logger.warning(
                                "claimed batch could not be leased; it is back in the queue untouched",
                                metadata: ["db.error": "\(error)"])
                        }
                        failures.reset()
                        if result.isHeld {
                            claimedTotal.add(result.claimed.count, ordering: .relaxed)
                            held = await runInline(result.claimed)
                            if result.claimed.count < limit { queueExhausted = true }
                            continue
                        }
                        if !result.claimed.isEmpty { inlineClaims = false }
                        jobs = try await fillFromOtherQueues(result.claimed, limit: limit, replicaID: replicaID)
                    } else {
                        jobs = try await claimLeased(current, replicaID: replicaID, limit: limit, session: session)
                        if !inlineKinds.isEmpty, !jobs.isEmpty, jobs.allSatisfy({ inlineKinds.contains($0.kind) }) {
                            inlineClaims = true
                        }
                    }
                    failures.reset()
                } catch {
                    // Settled ones are answered already; the rest are written by the next try.
                    finished.putBack(current)
                    let delay = failures.next()
                    logger.warning(
                        "claim failed; backing off", metadata: ["db.error": "\(error)", "retry.delay": "\(delay)"])
                    try? await Task.sleep(for: delay)
                    break
                }
                claimedTotal.add(jobs.count, ordering: .relaxed)
                for job in jobs {
                    guard let lease = job.lease else { continue }
                    let signal = JobStopSignal()
                    let timeout = registry.handler(for: job.kind)?.timeout ?? .seconds(86400)
                    running.insert(lease, signal: signal, deadline: .now.advanced(by: timeout))
                    group.addTask {
                        await self.execute(job, lease: lease, signal: signal, wake: wake)
                        self.running.remove(job.id)
                        wake.yield()
                    }
                }
                if jobs.count < limit { queueExhausted = true }
            }
        }
    }

    /// The classic claim: completes `current` and leases up to `limit` jobs, committed at once.
    private func claimLeased(
        _ current: [FinishedJobs.Entry], replicaID: String, limit: Int, session: DedicatedSession
    ) async throws -> [Job] {
        let result = try await store.completeAndClaim(
            finished: current.map(\.lease), replicaID: replicaID, queue: configuration.queues[0],
            limit: limit, lease: configuration.leaseDuration, on: session)
        let claimed = try await fillFromOtherQueues(result.claimed, limit: limit, replicaID: replicaID)
        settle(current, completed: result.completed)
        return claimed
    }

    /// Tops up a claim from the first queue with leased jobs from the others, in their order.
    private func fillFromOtherQueues(_ claimed: [Job], limit: Int, replicaID: String) async throws -> [Job] {
        guard claimed.count < limit, configuration.queues.count > 1 else { return claimed }
        return claimed
            + (try await store.claim(
                queues: Array(configuration.queues.dropFirst()), replicaID: replicaID, limit: limit - claimed.count,
                lease: configuration.leaseDuration))
    }

    /// Frees the slots of written completions and tells their jobs the outcome.
    private func settle(_ done: [FinishedJobs.Entry], completed: Set<Int64>) {
        for entry in done {
            running.remove(entry.lease.jobID)
            let recorded = completed.contains(entry.lease.jobID)
            if !recorded {
                logger.warning(
                    "completion not recorded: the job is no longer held by this replica",
                    metadata: [
                        "job.id": "\(entry.lease.jobID)", "job.attempt": "\(entry.lease.attempt)",
                    ])
            }
            entry.continuation.resume(returning: recorded)
        }
    }

    /// Writes completions without claiming (shutdown); a failed write leaves the jobs to be rescued.
    private func flushFinished() async {
        let done = finished.takeAll()
        guard !done.isEmpty else { return }
        do {
            settle(done, completed: try await store.complete(done.map(\.lease)))
        } catch {
            logger.error(
                "could not record completions at shutdown; the jobs will be rescued and run again",
                metadata: [
                    "db.error": "\(error)", "job.count": "\(done.count)",
                ])
            settle(done, completed: [])
        }
    }

    /// Waits for running jobs up to the grace period, then stops the rest (they are handed back).
    private func drain() async {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.gracePeriod)
        if runningCount > 0 {
            logger.info(
                "waiting for running jobs to finish",
                metadata: ["worker.running": "\(runningCount)", "worker.grace": "\(configuration.gracePeriod)"])
        }
        while runningCount > 0, clock.now < deadline, !Task.isCancelled {
            await flushFinished()
            try? await clock.sleep(for: .milliseconds(20))
        }
        let signals = running.allSignals
        if !signals.isEmpty {
            logger.warning(
                "grace period over; handing unfinished jobs back", metadata: ["worker.running": "\(signals.count)"])
            signals.forEach { $0.fire(.shutdown) }
        }
        // Every job task must end before the worker returns: keep writing what finishes meanwhile.
        while runningCount > 0 {
            await flushFinished()
            try? await clock.sleep(for: .milliseconds(20))
            await Task.yield()
        }
    }

    private func execute(_ job: Job, lease: JobLease, signal: JobStopSignal, wake: AsyncStream<Void>.Continuation) async
    {
        let log = JobLog(base: logger, job: job)
        guard let handler = registry.handler(for: job.kind) else {
            await record(
                .threw("no handler registered for job kind '\(job.kind)'", retryable: false), job: job, lease: lease,
                completion: JobCompletion(), wake: wake, log: log)
            return
        }
        let context = JobContext(job: job, lease: lease, baseLogger: logger)
        let started = ContinuousClock.now
        let outcome = await withTaskGroup(of: Outcome?.self) { group -> Outcome in
            group.addTask { await Self.run(handler, context) }
            group.addTask {
                switch await signal.wait() {
                case .timedOut: return .timedOut
                case let reason?: return .stopped(reason)
                case nil: return nil
                }
            }
            var first: Outcome?
            while first == nil, let next = await group.next() {
                first = next
            }
            group.cancelAll()
            // Only the parent being cancelled leaves no result: treat it as a shutdown.
            return first ?? .stopped(.shutdown)
        }
        log(.debug, "job finished", ["job.outcome": "\(outcome)", "job.duration": "\(ContinuousClock.now - started)"])
        await record(outcome, job: job, lease: lease, completion: context.completion, wake: wake, log: log)
    }

    /// Runs a handler and classifies how it ended; nil when it ended because its task was
    /// cancelled (the caller knows why: a stop signal, a timeout, the worker's end).
    static func run(_ handler: JobHandler, _ context: JobContext) async -> Outcome? {
        do {
            try await handler.body(context)
            return .succeeded
        } catch let lost as JobFenceLost {
            return .superseded(lost.description)
        } catch let error as PermanentJobFailure {
            return .threw(error.description, retryable: false)
        } catch let postponed as JobPostponed {
            return .postponed(postponed)
        } catch let error as any RetryClassifiedError {
            return .threw(String(describing: error), retryable: error.isRetryable)
        } catch is CancellationError where Task.isCancelled {
            return nil
        } catch {
            return .threw(String(describing: error), retryable: true)
        }
    }

    private func record(
        _ outcome: Outcome, job: Job, lease: JobLease, completion: JobCompletion, wake: AsyncStream<Void>.Continuation,
        log: JobLog
    ) async {
        // A handler that committed its outcome has completed its job row in that transaction,
        // whatever happened after: nothing more is written about it.
        if completion.isCompleted {
            metrics.count(kind: job.kind, .completed)
            if case .succeeded = outcome {
            } else {
                log(.notice, "job outcome already committed by its handler", ["job.outcome": "\(outcome)"])
            }
            return
        }
        do {
            switch outcome {
            case .succeeded:
                let recorded = await finished.waitForCompletion(lease, wake: wake)
                metrics.count(kind: job.kind, recorded ? .completed : .notOwner)
            case .superseded(let reason):
                metrics.count(kind: job.kind, .notOwner)
                log(.warning, "job superseded: its outcome was not applied", ["job.reason": "\(reason)"])
            case .stopped(.leaseLost):
                metrics.count(kind: job.kind, .notOwner)
                log(.warning, "job stopped: its lease is no longer this replica's; nothing recorded")
            case .stopped(.abandoned):
                let returned = try await store.handBack(
                    [lease], reason: "abandoned by \(lease.replicaID), which was marked stopped")
                metrics.count(kind: job.kind, returned.contains(job.id) ? .handedBack : .notOwner)
                log(.warning, "job abandoned", ["job.handed_back": "\(returned.contains(job.id))"])
            case .threw(let message, let retryable):
                try await fail(job, lease: lease, message: message, retryable: retryable, log: log)
            case .postponed(let postponed):
                let recorded = try await postponed.record(lease, in: store)
                metrics.count(kind: job.kind, recorded ? .postponed : .notOwner)
                log(.info, "job postponed", ["job.due": "\(postponed.due)", "job.reason": "\(postponed.reason)"])
                if recorded, case .after(let delay) = postponed.due, delay < configuration.pollInterval {
                    // Due before the next poll (a merge waiting for a lease looks again in half a
                    // second): look then, rather than round the wait up to the poll interval.
                    // Nobody else may tell: a lease whose holder was killed frees silently.
                    Task {
                        try? await Task.sleep(for: delay)
                        wake.yield()
                    }
                }
            case .timedOut, .stopped(.timedOut):
                try await fail(
                    job, lease: lease, message: "timed out after \(registry.handler(for: job.kind)?.timeout ?? .zero)",
                    retryable: true, log: log)
            case .stopped(.cancelRequested):
                let recorded = try await store.markCancelled(lease, reason: "cancelled while running")
                metrics.count(kind: job.kind, recorded ? .cancelled : .notOwner)
                log(.info, "job cancelled", ["job.recorded": "\(recorded)"])
            case .stopped(.shutdown):
                let returned = try await store.handBack(
                    [lease], reason: "handed back at shutdown of \(lease.replicaID)")
                metrics.count(kind: job.kind, returned.contains(job.id) ? .handedBack : .notOwner)
                log(.info, "job handed back to the queue", ["job.recorded": "\(returned.contains(job.id))"])
            }
        } catch {
            // The lease will expire and the leader rescues the job: nothing is lost.
            log(.error, "could not record job outcome", ["db.error": "\(error)", "job.outcome": "\(outcome)"])
        }
    }

    private func fail(_ job: Job, lease: JobLease, message: String, retryable: Bool, log: JobLog) async throws {
        let delay = Backoff.delay(
            attempt: job.attempt - 1, initial: configuration.retryInitial, maximum: configuration.retryMaximum)
        let finalAttempt = !retryable || job.attempt >= job.maxAttempts
        let hook = registry.handler(for: job.kind)?.failedForGood
        let result = try await store.fail(
            lease, error: message, retryDelay: delay, retryable: retryable, finalAttempt: finalAttempt,
            whenFinal: hook.map { hook in { connection in try await hook(job, message, retryable, connection) } })
        switch result {
        case .retrying(let runAt):
            metrics.count(kind: job.kind, .retrying)
            log(.warning, "job failed; will retry", ["job.error": "\(message)", "job.retry_at": "\(runAt)"])
        case .failed:
            metrics.count(kind: job.kind, .failed)
            log(.error, "job failed for good", ["job.error": "\(message)", "job.max_attempts": "\(job.maxAttempts)"])
        case .notOwner:
            metrics.count(kind: job.kind, .notOwner)
            log(
                .warning, "failure not recorded: the job is no longer held by this replica", ["job.error": "\(message)"]
            )
        }
    }
}
