-- Timings around each agent run, for the orchestration-overhead benchmark and for operators:
-- when the process was spawned and exited, and how long git took before (fetch + worktree) and
-- after it (commit + push), so the orchestrator's own overhead can be told apart from git's.

ALTER TABLE agent_runs
    ADD COLUMN spawned_at   timestamptz,
    ADD COLUMN exited_at    timestamptz,
    ADD COLUMN workspace_ms double precision,
    ADD COLUMN git_after_ms double precision;
COMMENT ON COLUMN agent_runs.workspace_ms IS 'Milliseconds of git fetch + worktree preparation before the agent started.';
COMMENT ON COLUMN agent_runs.git_after_ms IS 'Milliseconds of git commit + push after the agent exited.';
