-- Pipeline correctness (issue #10): what an agent run left on the task branch.
--
-- base_sha is the branch head the run started from, committed_sha the commit of what the run left
-- (made by the orchestrator right after the run succeeded), pushed_sha the head pushed after it. A
-- retry of the same job after a later step failed (a rejected or failed push, a database error,
-- Gitea down while opening the PR) picks the run up from the commit or the pushed head instead of
-- paying for the agent a second time; the development gate counts only the commits after base_sha.
ALTER TABLE agent_runs ADD COLUMN base_sha text;
ALTER TABLE agent_runs ADD COLUMN committed_sha text;
ALTER TABLE agent_runs ADD COLUMN pushed_sha text;
COMMENT ON COLUMN agent_runs.base_sha IS 'Task branch head the run started from (its gate judges commits after it).';
COMMENT ON COLUMN agent_runs.committed_sha IS 'Commit of the work of a successful run, before its push; a retry on the same replica pushes it without re-running the agent.';
COMMENT ON COLUMN agent_runs.pushed_sha IS 'Task branch head pushed after the run succeeded; a retried job resumes from it without re-running the agent.';

-- A task's stage jobs by work item: cancelling them, waking a merge, and the leader's sweep for
-- active tasks without a live stage job look them up this way.
CREATE INDEX jobs_stage_work_item_idx ON jobs ((payload->>'work_item')) WHERE kind = 'run_stage';
