-- Pipeline correctness (issue #10): what an agent run left on the task branch.
--
-- base_sha is the branch head the run started from, pushed_sha the head the orchestrator pushed
-- after the run succeeded. A retry of the same job after a later step failed (a database error,
-- Gitea down while opening the PR) finds the pushed run and judges it again instead of paying for
-- the agent a second time; the development gate counts only the commits after base_sha.
ALTER TABLE agent_runs ADD COLUMN base_sha text;
ALTER TABLE agent_runs ADD COLUMN pushed_sha text;
COMMENT ON COLUMN agent_runs.base_sha IS 'Task branch head the run started from (its gate judges commits after it).';
COMMENT ON COLUMN agent_runs.pushed_sha IS 'Task branch head pushed after the run succeeded; a retried job resumes from it without re-running the agent.';

-- A task's stage jobs by work item: cancelling them, waking a merge, and the leader's sweep for
-- active tasks without a live stage job look them up this way.
CREATE INDEX jobs_stage_work_item_idx ON jobs ((payload->>'work_item')) WHERE kind = 'run_stage';
