-- Fenced stage outcomes (issue #9).
--
-- tasks.visit counts the runs of stages a task has started: it grows by one each time a stage is
-- (re)entered with a fresh job series (a new stage, an approval, a retry, changes requested). A
-- run_stage job carries the visit it was enqueued for, and its outcome applies only while the task
-- is still in that stage and visit: a late outcome for an earlier visit can never move a later one.
ALTER TABLE tasks ADD COLUMN visit integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN tasks.visit IS 'Stage visit counter; a run_stage outcome applies only to the visit it was enqueued for.';

-- Pull requests bound to the task: Gitea's updated_at of the newest pull_request delivery applied,
-- so a replayed or late delivery cannot rewind pr_number/head_sha.
ALTER TABLE tasks ADD COLUMN pr_updated_at timestamptz;
COMMENT ON COLUMN tasks.pr_updated_at IS 'updated_at of the newest Gitea pull_request event applied to the task (older ones are ignored).';

-- What became of an agent run's result: applied by its job's fenced outcome, or superseded (the
-- job had lost its lease: rescued, cancelled or handed to another replica), so nothing was applied.
ALTER TABLE agent_runs ADD COLUMN outcome text CHECK (outcome IN ('applied', 'superseded'));
COMMENT ON COLUMN agent_runs.outcome IS 'applied: its stage outcome committed; superseded: its job lost the lease and applied nothing.';
