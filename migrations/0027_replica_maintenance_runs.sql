-- The reaper's every-replica duties (issue #13): each replica prunes the files on its own disk
-- (task worktrees of ended tasks, per-run agent logs) and reclaims its own previous lives' leases
-- at start. maintenance_runs keeps one row per duty, which fits the leader's duties only; these
-- run on every replica, so they are kept per duty and replica (its stable name and host: the
-- files belong to that ORCH_WORKDIR, whichever process id last worked there).
CREATE TABLE replica_maintenance_runs (
    duty           text NOT NULL,
    replica_name   text NOT NULL,
    host           text NOT NULL,
    replica_id     text NOT NULL,
    last_run_at    timestamptz NOT NULL DEFAULT now(),
    last_affected  integer NOT NULL DEFAULT 0,
    total_affected bigint NOT NULL DEFAULT 0,
    runs           bigint NOT NULL DEFAULT 0,
    last_error     text,
    PRIMARY KEY (duty, replica_name, host)
);
COMMENT ON TABLE replica_maintenance_runs IS 'Last run of each every-replica reaper duty (worktree-prune, agent-log-prune, lease-reclaim) per replica, for GET /queue (reaper block, replica_duties).';
COMMENT ON COLUMN replica_maintenance_runs.duty IS 'The duty: worktree-prune, agent-log-prune or lease-reclaim (at start).';
COMMENT ON COLUMN replica_maintenance_runs.replica_name IS 'ORCH_REPLICA_NAME of the replica that ran it (stable across restarts).';
COMMENT ON COLUMN replica_maintenance_runs.host IS 'Host the replica runs on: the files pruned are on its disk.';
COMMENT ON COLUMN replica_maintenance_runs.replica_id IS 'Process id (replicas.id) of the replica that ran it last.';
COMMENT ON COLUMN replica_maintenance_runs.last_run_at IS 'When the last run ended.';
COMMENT ON COLUMN replica_maintenance_runs.last_affected IS 'What the last run removed or reclaimed: worktrees, log files, or jobs plus merge-lease rows.';
COMMENT ON COLUMN replica_maintenance_runs.total_affected IS 'Sum of last_affected over all runs.';
COMMENT ON COLUMN replica_maintenance_runs.runs IS 'How many runs were recorded.';
COMMENT ON COLUMN replica_maintenance_runs.last_error IS 'Why the last run failed; NULL when it succeeded.';
