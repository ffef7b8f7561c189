-- Session resume (issue #15): the agent's own session id, read from its result, and which run's
-- session a run resumed. A stage tried again (a gate's, CI's or a review's feedback) resumes the
-- stage's last session so the agent keeps its context; a run that could not resume is followed
-- by a fresh one that says why. No foreign key: the reaper prunes old runs in any order.
ALTER TABLE agent_runs
    ADD COLUMN session_id   text,
    ADD COLUMN resumed_from bigint,
    ADD COLUMN resume_note  text;
COMMENT ON COLUMN agent_runs.session_id IS 'The agent''s session id from its result (Claude Code''s session_id); NULL when it printed none.';
COMMENT ON COLUMN agent_runs.resumed_from IS 'The run whose session this run was asked to resume (agents.<role>.resume); NULL for a fresh session.';
COMMENT ON COLUMN agent_runs.resume_note IS 'Why this run started a fresh session although the stage had one to resume (the resumed run ended without a result).';
