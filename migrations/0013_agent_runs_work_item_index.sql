-- `/tasks/{wi}` reads a task's agent runs and its cost per stage by work item; the index of 0009
-- is on task_id, which no query uses, so those reads scanned the table.
CREATE INDEX agent_runs_work_item_idx ON agent_runs (work_item, id);
