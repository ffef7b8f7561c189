-- Agent runs (DESIGN §7): one row per agent process the orchestrator starts, with what it cost.
-- host + pid + process start time identify the process, so a restarted replica can find and kill
-- its own orphans, and the leader can close the runs of replicas that are gone.

CREATE TABLE agent_runs (
    id                 bigserial PRIMARY KEY,
    task_id            bigint REFERENCES tasks (id) ON DELETE SET NULL,
    work_item          text,
    job_id             bigint,                 -- the run_stage job
    stage              text,
    role               text NOT NULL,          -- agents[...] key: default, reviewer, …
    replica_id         text NOT NULL,
    host               text NOT NULL,
    pid                integer,
    process_start      bigint,                 -- /proc/<pid>/stat starttime (clock ticks since boot)
    command            text[] NOT NULL,
    log_path           text,
    started_at         timestamptz NOT NULL DEFAULT now(),
    ended_at           timestamptz,
    exit_code          integer,                -- -1: closed without an exit status (orphan, replica gone)
    timed_out          boolean NOT NULL DEFAULT false,
    input_tokens       bigint,
    output_tokens      bigint,
    cache_read_tokens  bigint,
    cache_write_tokens bigint,
    cost_usd           numeric(14, 6),         -- NULL = unknown (a plain-text agent)
    model              text,
    result_subtype     text,                   -- Claude's result subtype, e.g. success, error_max_turns
    num_turns          integer,
    is_error           boolean,
    error              text
);
COMMENT ON TABLE agent_runs IS 'Agent processes started by the orchestrator, with exit status, tokens and cost.';
CREATE INDEX agent_runs_task_idx ON agent_runs (task_id, id);
CREATE INDEX agent_runs_live_idx ON agent_runs (replica_id) WHERE ended_at IS NULL;
