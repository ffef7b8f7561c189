-- Merge leases (issue #12): one merge (and the verification of its merge commit) per repository
-- at a time across all replicas.
--
-- The lease itself is a session advisory lock (namespace merge, key hashtext(repo)) held on a
-- dedicated connection for the whole merge and verification: it is the truth, and a replica that
-- dies frees it at once. This table only mirrors the holder for operators. A row whose backend no
-- longer holds the lock (its replica died) is stale: readers join pg_locks on backend_pid, and
-- the next holder overwrites it.
CREATE TABLE merge_leases (
    repo text PRIMARY KEY,
    work_item text NOT NULL,
    replica_id text NOT NULL,
    backend_pid int NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE merge_leases IS 'Who holds each repository''s merge lease (mirror of the advisory lock; stale when the lock is free).';

-- When the verification of the task's merge commit began (by the database clock): its window
-- counts from here, also for a job retried on another replica after its replica died. Cleared
-- when the task is held, so a retry after the hold starts a new window.
ALTER TABLE tasks ADD COLUMN merge_verify_since timestamptz;
COMMENT ON COLUMN tasks.merge_verify_since IS 'Start of the merge commit''s CI verification window (NULL: not verifying).';
