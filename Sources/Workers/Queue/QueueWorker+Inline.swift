import Foundation
import Logging
import Store

/// Inline jobs (docs/architecture.md, "Inline jobs"): the batch a claim holds in its open
/// transaction is run here, and what each job's outcome writes is decided by the worker's usual
/// rules (retries with backoff, attempts, postponements).
extension QueueWorker {
    /// Runs a held batch of inline jobs at once and returns what to write about each. The batch
    /// is cut at its kinds' shortest timeout or half the lease, whichever is sooner (the server
    /// ends a session idle in its transaction past the lease): one deadline for the batch rather
    /// than a timer per job.
    func runInline(_ jobs: [Job]) async -> [JobStore.InlineResult] {
        let limit = jobs.reduce(configuration.leaseDuration / 2) { limit, job in
            min(limit, registry.handler(for: job.kind)?.timeout ?? limit)
        }
        let outcomes = await withTaskGroup(of: (Int, Outcome)?.self) { group -> [Outcome?] in
            for (index, job) in jobs.enumerated() {
                group.addTask { (index, await self.runInlineHandler(job)) }
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            var outcomes = [Outcome?](repeating: nil, count: jobs.count)
            var pending = jobs.count
            while pending > 0, let next = await group.next() {
                guard let (index, outcome) = next else { break }
                outcomes[index] = outcome
                pending -= 1
            }
            group.cancelAll()
            return outcomes
        }
        return zip(jobs, outcomes).map { job, outcome in
            JobStore.InlineResult(job: job, outcome: inlineOutcome(outcome ?? .timedOut, of: job, limit: limit))
        }
    }

    func runInlineHandler(_ job: Job) async -> Outcome {
        guard let handler = registry.handler(for: job.kind) else {
            return .threw("no handler registered for job kind '\(job.kind)'", retryable: false)
        }
        let context = JobContext(
            job: job, lease: JobLease(jobID: job.id, replicaID: identity.id, attempt: job.attempt), baseLogger: logger)
        // Cancelled means cut by the batch's deadline.
        return await Self.run(handler, context) ?? .timedOut
    }

    /// What an inline job's outcome writes: the same retry and backoff rules as a leased job's.
    func inlineOutcome(_ outcome: Outcome, of job: Job, limit: Duration) -> JobStore.InlineOutcome {
        let log = JobLog(base: logger, job: job)
        let failure: (message: String, retryable: Bool)
        switch outcome {
        case .succeeded:
            return .completed
        case .postponed(let postponed):
            log(.info, "job postponed", ["job.due": "\(postponed.due)", "job.reason": "\(postponed.reason)"])
            switch postponed.due {
            case .at(let date): return .postponed(after: nil, until: date, reason: postponed.reason)
            case .after(let delay): return .postponed(after: delay, until: nil, reason: postponed.reason)
            }
        case .threw(let message, let retryable):
            failure = (message, retryable)
        case .timedOut:
            failure = ("timed out after \(limit)", true)
        case .superseded(let message):
            failure = (message, true)
        case .stopped(let reason):
            failure = ("stopped: \(reason)", true)
        }
        if !failure.retryable || job.attempt >= job.maxAttempts {
            log(
                .error, "job failed for good",
                ["job.error": "\(failure.message)", "job.max_attempts": "\(job.maxAttempts)"])
            return .failed(error: failure.message)
        }
        let delay = Backoff.delay(
            attempt: job.attempt - 1, initial: configuration.retryInitial, maximum: configuration.retryMaximum)
        log(.warning, "job failed; will retry", ["job.error": "\(failure.message)", "job.retry_in": "\(delay)"])
        return .retry(after: delay, error: failure.message)
    }

    /// Counts the inline outcomes committed.
    func countInline(_ outcomes: [JobStore.InlineResult], written: Set<Int64>) {
        for result in outcomes {
            guard written.contains(result.job.id) else {
                metrics.count(kind: result.job.kind, .notOwner)
                continue
            }
            switch result.outcome {
            case .completed: metrics.count(kind: result.job.kind, .completed)
            case .retry: metrics.count(kind: result.job.kind, .retrying)
            case .failed: metrics.count(kind: result.job.kind, .failed)
            case .postponed: metrics.count(kind: result.job.kind, .postponed)
            }
        }
    }

    /// A held batch whose outcomes could not be committed: its transaction was rolled back, so
    /// its jobs are queued again as they were and run again (here or elsewhere).
    func lostInline(_ outcomes: [JobStore.InlineResult], error: any Error) {
        for result in outcomes { metrics.count(kind: result.job.kind, .notOwner) }
        logger.warning(
            "inline batch not committed; its jobs are queued again as they were",
            metadata: [
                "db.error": "\(error)", "job.count": "\(outcomes.count)",
                "job.ids": "\(outcomes.map(\.job.id))",
            ])
    }
}
