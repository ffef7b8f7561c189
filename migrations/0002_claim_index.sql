-- The claim filters on one queue and orders by (priority, run_at, id). An index led by the queue
-- turns it into a short ordered index scan whatever the statistics say; with 0001's index the
-- planner could pick a sequential scan and sort of the whole backlog (13 ms per claim at 10,000
-- queued jobs instead of well under 1 ms).
DROP INDEX IF EXISTS jobs_claim_idx;
CREATE INDEX jobs_claim_idx ON jobs (queue, priority, run_at, id) WHERE status = 'queued';
