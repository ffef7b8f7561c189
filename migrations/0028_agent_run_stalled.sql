-- Stall detection (issue #15): a run stopped because it printed nothing for its role's
-- stall_timeout. Kept apart from timed_out (the wall-clock limit): a stall is retried as a
-- transient failure, a timeout is judged by the gate. A constant default adds the column without
-- rewriting the table, so replicas of the previous release keep running meanwhile.
ALTER TABLE agent_runs ADD COLUMN stalled boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN agent_runs.stalled IS 'Stopped because it printed nothing (stdout or stderr) for agents.<role>.stall_timeout; error says for how long. Such a run is retried as a transient failure and recorded as a stalled lesson.';
