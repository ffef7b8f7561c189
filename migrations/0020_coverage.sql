-- The coverage gate (issue #12): per repository the baseline a ratchet compares against, and what
-- each task's development gate measured.
--
-- The baseline only rises when a task merges (set_by 'merge': the merge stage's outcome raises it
-- to that task's latest passing measurement, in the same transaction, with the merge commit); an
-- operator may set it to any value, lower too (set_by 'operator', POST /coverage/baseline).
CREATE TABLE coverage_baselines (
    repo text PRIMARY KEY,
    baseline double precision NOT NULL CHECK (baseline >= 0 AND baseline <= 100),
    commit_sha text,
    work_item text,
    set_by text NOT NULL CHECK (set_by IN ('merge', 'operator')),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE coverage_baselines IS 'Per repository: the coverage baseline of the ratchet policy (percent).';
COMMENT ON COLUMN coverage_baselines.commit_sha IS 'Merge commit whose measurement set it; NULL when an operator set it.';
COMMENT ON COLUMN coverage_baselines.work_item IS 'Task whose merge set it; NULL when an operator set it.';
COMMENT ON COLUMN coverage_baselines.set_by IS 'merge (raised by a merged task) or operator (POST /coverage/baseline).';

-- One row per run of coverage_command in a development gate, passed or not: the merge raises the
-- baseline from the task's latest passing one.
CREATE TABLE coverage_measurements (
    id bigserial PRIMARY KEY,
    work_item text NOT NULL,
    repo text NOT NULL,
    percent double precision NOT NULL CHECK (percent >= 0 AND percent <= 100),
    head_sha text NOT NULL,
    passed boolean NOT NULL,
    measured_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE coverage_measurements IS 'Coverage measured by each development gate (coverage_command on the task head).';
COMMENT ON COLUMN coverage_measurements.passed IS 'Whether the coverage gate passed this measurement.';

CREATE INDEX coverage_measurements_work_item_idx ON coverage_measurements (work_item, id);
