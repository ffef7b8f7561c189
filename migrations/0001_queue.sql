-- The shared job queue, the replica registry and the leader mirror (DESIGN §5).

CREATE TABLE replicas (
    id            text PRIMARY KEY,                 -- unique per process start
    name          text NOT NULL,                    -- stable across restarts (ORCH_REPLICA_NAME, default hostname)
    host          text NOT NULL,
    pid           integer NOT NULL,
    role          text NOT NULL DEFAULT 'all',
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at    timestamptz,                      -- set on clean shutdown or when found dead
    leader_since  timestamptz                       -- non-NULL only on the current leader
);
COMMENT ON TABLE replicas IS 'One row per orchestrator process; heartbeat_at is judged by the database clock.';
CREATE INDEX replicas_name_idx ON replicas (name, host);

CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL,
    queue            text NOT NULL DEFAULT 'default',
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    priority         integer NOT NULL DEFAULT 0,      -- lower runs first
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempt          integer NOT NULL DEFAULT 0,      -- incremented by every claim; the fencing token
    max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    dedupe_key       text,
    locked_by        text,                            -- replica id while running; last owner afterwards
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,                     -- latest claim
    finished_at      timestamptz
);
COMMENT ON TABLE jobs IS 'Durable work queue; every side effect of the orchestrator is a job.';
COMMENT ON COLUMN jobs.attempt IS 'Claims so far; writes about a running job are fenced by (id, locked_by, attempt).';

-- Serves the claim: only queued rows are indexed, in claim order.
CREATE INDEX jobs_claim_idx ON jobs (priority, run_at, id) WHERE status = 'queued';
-- "Run stage X of task Y" exists once while queued or running.
CREATE UNIQUE INDEX jobs_dedupe_idx ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
-- Heartbeats and rescue look up running jobs by owner.
CREATE INDEX jobs_running_idx ON jobs (locked_by, lease_expires_at) WHERE status = 'running';
-- Pruning walks finished rows by age.
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE status IN ('completed', 'failed', 'cancelled');
