import Foundation

/// Inline jobs: short jobs claimed, run and finished in one transaction of the worker's claim
/// session, so each job is written once (its outcome) instead of twice (claimed, then finished).
///
/// The claim locks the rows (`FOR UPDATE SKIP LOCKED`) and leaves the transaction open while the
/// handlers run; the next round trip writes their outcomes, commits, and claims the next batch.
/// The row lock is the fence: no other claim sees the rows while it is held, and it ends with the
/// session. A killed replica's session closes at once; a paused one is ended by the server after
/// `idle_in_transaction_session_timeout` (the lease duration). Either way the transaction rolls
/// back and the jobs are queued again as they were, and the stale outcome can never commit.
/// See docs/architecture.md, "Inline jobs".
extension JobStore {
    /// How one inline job ended; written in the transaction that claimed it.
    public enum InlineOutcome: Sendable, Equatable {
        /// Done: `completed`.
        case completed
        /// Failed; queued again after `delay` (measured from the database clock).
        case retry(after: Duration, error: String)
        /// Failed for good: `failed`.
        case failed(error: String)
        /// Postponed without spending an attempt (`max_attempts` grows by one, as for a leased job).
        case postponed(after: Duration?, until: Date?, reason: String)
    }

    /// The outcome of one inline job of the batch held.
    public struct InlineResult: Sendable {
        public var job: Job
        public var outcome: InlineOutcome

        public init(job: Job, outcome: InlineOutcome) {
            self.job = job
            self.outcome = outcome
        }
    }

    /// What `finishAndClaim` did.
    public struct InlineClaim: Sendable {
        /// Leased jobs whose completion was written (and committed).
        public var completed: Set<Int64>
        /// Inline outcomes written and committed.
        public var written: Set<Int64>
        /// The new batch: leased (committed, `running`) or, when `isHeld`, locked in the open
        /// transaction for their handlers to run now.
        public var claimed: [Job]
        /// The claimed jobs are inline and the session's transaction stays open until the next call.
        public var isHeld: Bool
        /// Why a mixed batch could not be leased after the rest of the call was committed: its
        /// jobs were rolled back to the queue untouched, and `claimed` is empty.
        public var leaseError: String?
    }

    // Locks the next batch and returns it with the attempt each job will be written with. The
    // caller keeps it held if every job is of an inline kind, else leases it (`inlineLeaseSQL`).
    // As plain as the claim can be: its plan is started once per batch.
    static let inlineClaimSQL: [String] = (0...maximumClaimBatch).map { limit in
        """
        SELECT id, kind, queue, payload, priority, attempt + 1 AS attempt, max_attempts, dedupe_key, last_error,
               run_at, created_at
        FROM jobs
        WHERE status = 'queued' AND queue = $2 AND run_at <= now()
          AND NOT EXISTS (SELECT 1 FROM replicas WHERE id = $1 AND stopped_at IS NOT NULL)
        ORDER BY priority, run_at, id
        LIMIT \(limit)
        FOR UPDATE SKIP LOCKED
        """
    }

    // A locked batch with a leased kind in it: leased whole, as the classic claim would.
    static let inlineLeaseSQL = """
        UPDATE jobs
        SET status = 'running', attempt = attempt + 1, locked_by = $1, claimed_at = now(),
            lease_expires_at = now() + make_interval(secs => $3::float8), finished_at = NULL
        WHERE id = ANY($2::bigint[]) AND status COLLATE "C" = 'queued'
        RETURNING id
        """

    // The held batch's outcomes. `now()` is the transaction's start, i.e. the claim; the end of
    // the job is `clock_timestamp()`. Fenced by the attempt read at the claim (the rows are
    // locked, so this only guards against a caller's mistake). `status COLLATE "C"` (the same
    // test) keeps the planner off jobs_claim_idx, whose predicate `status = 'queued'` would
    // otherwise match: with statistics from a near-empty table it walks the whole backlog per
    // batch instead of probing the primary key (ClaimPlanTests).
    static let inlineOutcomesSQL = """
        WITH written AS (
            UPDATE jobs j
            SET status = o.status, attempt = o.attempt, locked_by = $1, claimed_at = now(),
                lease_expires_at = NULL,
                finished_at = CASE WHEN o.status = 'queued' THEN NULL ELSE clock_timestamp() END,
                run_at = CASE WHEN o.status = 'queued'
                              THEN coalesce(o.until, clock_timestamp() + make_interval(secs => o.delay))
                              ELSE j.run_at END,
                max_attempts = j.max_attempts + o.extra_attempts,
                last_error = coalesce(o.error, j.last_error)
            FROM unnest($2::bigint[], $3::int[], $4::text[], $5::float8[], $6::timestamptz[], $7::text[], $8::int[])
                AS o(id, attempt, status, delay, until, error, extra_attempts)
            WHERE j.id = o.id AND j.status COLLATE "C" = 'queued' AND j.attempt = o.attempt - 1
            RETURNING j.id, j.queue, j.status, j.run_at
        ), notified AS (
            SELECT pg_notify('orch_jobs', q.queue)
            FROM (SELECT DISTINCT queue FROM written WHERE status = 'queued' AND run_at <= clock_timestamp()) q
        )
        SELECT coalesce(array_agg(id), '{}') AS written, (SELECT count(*) FROM notified) AS notified FROM written
        """

    // The common case, a held batch that all succeeded: no outcome arrays to unpack.
    static let inlineCompletedSQL = """
        WITH written AS (
            UPDATE jobs
            SET status = 'completed', attempt = attempt + 1, locked_by = $1, claimed_at = now(),
                lease_expires_at = NULL, finished_at = clock_timestamp()
            WHERE id = ANY($2::bigint[]) AND status COLLATE "C" = 'queued'
            RETURNING id
        )
        SELECT coalesce(array_agg(id), '{}') AS written FROM written
        """

    /// One round trip: writes the outcomes of the batch held (if `holding`), completes `finished`
    /// (leased jobs that succeeded; fenced), commits, and claims up to `limit` from `queue`. If
    /// every job claimed is of one of `inlineKinds`, they come back held: the transaction stays
    /// open until the next call writes their outcomes. Otherwise they are leased, and committed
    /// in a second round trip before returning.
    ///
    /// On an error the session is closed: a batch held is rolled back (its jobs queued again,
    /// untouched) and nothing of this call was committed.
    public func finishAndClaim(
        held outcomes: [InlineResult], holding: Bool, finished: [JobLease], replicaID: String, queue: String,
        limit: Int, lease: Duration, inlineKinds: [String], on session: DedicatedSession
    ) async throws -> InlineClaim {
        var statements: [(sql: String, parameters: [any PostgresEncodable])] = []
        // Where the outcomes' and the completions' results are.
        var outcomesAt: Int?
        var completionsAt: Int?
        if holding {
            if !outcomes.isEmpty {
                outcomesAt = statements.count
                if outcomes.allSatisfy({ $0.outcome == .completed }) {
                    statements.append((Self.inlineCompletedSQL, [replicaID, PostgresArray(outcomes.map(\.job.id))]))
                } else {
                    statements.append((Self.inlineOutcomesSQL, Self.outcomeParameters(outcomes, replicaID)))
                }
            }
            if !finished.isEmpty {
                completionsAt = statements.count
                statements.append((Self.completeSQL, Self.completeParameters(finished)))
            }
            statements.append(("COMMIT", []))
        } else if !finished.isEmpty {
            // A pipeline is one implicit transaction, which the BEGIN below would extend over the
            // new batch: commit the completions on their own first.
            statements.append(("BEGIN", []))
            completionsAt = statements.count
            statements.append((Self.completeSQL, Self.completeParameters(finished)))
            statements.append(("COMMIT", []))
        }
        let claiming = limit > 0
        if claiming {
            statements.append(("BEGIN", []))
            statements.append(
                (Self.inlineClaimSQL[min(limit, Self.maximumClaimBatch)], [replicaID, queue]))
        }
        guard !statements.isEmpty else { return InlineClaim(completed: [], written: [], claimed: [], isHeld: false) }
        let results: [QueryResult]
        do {
            results = try await session.pipeline(statements)
        } catch {
            session.discard()
            throw error
        }
        var written: Set<Int64> = []
        var completed: Set<Int64> = []
        if let outcomesAt {
            written = Set(try results[outcomesAt].first?.decode("written", as: PostgresIntegerArray.self).values ?? [])
        }
        if let completionsAt {
            completed = Set(try results[completionsAt].rows.map { try $0.decode("id", as: Int64.self) })
        }
        guard claiming, let rows = results.last?.rows else {
            return InlineClaim(completed: completed, written: written, claimed: [], isHeld: false)
        }
        let claimed = try rows.map { try Job(claimedRow: $0, replicaID: replicaID) }
        let held = !claimed.isEmpty && claimed.allSatisfy { inlineKinds.contains($0.kind) }
        if !held {
            // Leased (their handlers use the lease, so it is committed first) or nothing.
            var closing: [(sql: String, parameters: [any PostgresEncodable])] = [("COMMIT", [])]
            if !claimed.isEmpty {
                closing.insert((Self.inlineLeaseSQL, [replicaID, PostgresArray(claimed.map(\.id)), lease]), at: 0)
            }
            do {
                let leased = try await session.pipeline(closing)
                if !claimed.isEmpty, leased[0].rows.count != claimed.count {
                    throw PostgresError(kind: .server, message: "a locked job changed before it was leased")
                }
            } catch {
                // The outcomes and completions above are committed already: report them, and the
                // batch (rolled back by closing the session) as not claimed.
                session.discard()
                return InlineClaim(
                    completed: completed, written: written, claimed: [], isHeld: false, leaseError: "\(error)")
            }
        }
        return InlineClaim(completed: completed, written: written, claimed: claimed, isHeld: held)
    }

    private static func outcomeParameters(_ outcomes: [InlineResult], _ replicaID: String) -> [any PostgresEncodable] {
        var status: [String] = []
        var delay: [Double?] = []
        var until: [Date?] = []
        var error: [String?] = []
        var extra: [Int] = []
        for result in outcomes {
            switch result.outcome {
            case .completed:
                status.append("completed"); delay.append(nil); until.append(nil); error.append(nil); extra.append(0)
            case .retry(let after, let message):
                status.append("queued"); delay.append(after.seconds); until.append(nil); error.append(message)
                extra.append(0)
            case .failed(let message):
                status.append("failed"); delay.append(nil); until.append(nil); error.append(message); extra.append(0)
            case .postponed(let after, let at, let reason):
                status.append("queued"); delay.append(max(after ?? .zero, .zero).seconds); until.append(at)
                error.append(reason); extra.append(1)
            }
        }
        return [
            replicaID, PostgresArray(outcomes.map(\.job.id)), PostgresArray(outcomes.map(\.job.attempt)),
            PostgresArray(status), PostgresArray(delay), PostgresArray(until), PostgresArray(error),
            PostgresArray(extra),
        ]
    }
}
