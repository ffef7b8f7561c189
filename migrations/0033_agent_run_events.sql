-- Live output (issue #15): what an agent prints, one row per line, stored in batches while it
-- runs so any replica can serve a run's events (paged, or followed as Server-Sent Events).
-- A stream-json line is kept as its JSON object, a plain line as a JSON string. Rows go with
-- their run, and the reaper deletes those of runs ended longer ago than the log retention.
CREATE TABLE agent_run_events (
    run_id bigint NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    seq    integer NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    kind   text NOT NULL,
    data   jsonb NOT NULL,
    PRIMARY KEY (run_id, seq)
);
COMMENT ON TABLE agent_run_events IS 'Each line an agent printed (stdout and stderr), in order, for GET /tasks/{wi}/runs/{run}/events and its Server-Sent Events stream.';
COMMENT ON COLUMN agent_run_events.run_id IS 'The run (agent_runs.id).';
COMMENT ON COLUMN agent_run_events.seq IS 'The line''s number in the run, from 1, without gaps.';
COMMENT ON COLUMN agent_run_events.at IS 'When the batch holding it was stored (within a fraction of a second of the print).';
COMMENT ON COLUMN agent_run_events.kind IS 'A JSON line''s "type" (system, assistant, user, result, …), else line.';
COMMENT ON COLUMN agent_run_events.data IS 'The line: its JSON object, or the text as a JSON string (cut at 64 KiB).';
