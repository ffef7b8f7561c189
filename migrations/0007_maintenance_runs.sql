-- What the leader's maintenance duties (the reaper: rescue, replica sweep, prune) last did, so any
-- replica can show it in GET /queue whichever replica leads.

CREATE TABLE maintenance_runs (
    duty           text PRIMARY KEY,              -- 'rescue', 'replica-sweep', 'prune'
    replica_id     text NOT NULL,                 -- the leader that ran it last
    last_run_at    timestamptz NOT NULL,
    last_affected  integer NOT NULL DEFAULT 0,    -- rows the last run changed
    total_affected bigint NOT NULL DEFAULT 0,
    runs           bigint NOT NULL DEFAULT 0,
    last_error     text                           -- NULL when the last run succeeded
);
COMMENT ON TABLE maintenance_runs IS 'Last run of each leader maintenance duty, for GET /queue (reaper block).';
