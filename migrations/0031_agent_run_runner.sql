-- Runner choice (issue #15): which of a role's runners (agents.<role>.runners, in order) a run
-- used, so a stage's next try takes the next one and a session is resumed only by the runner
-- that made it. 0 for the first (and for runs from before runners existed).
ALTER TABLE agent_runs ADD COLUMN runner smallint NOT NULL DEFAULT 0;
COMMENT ON COLUMN agent_runs.runner IS 'Index of the runner in agents.<role>.runners (0: the first, or the role''s only command).';
