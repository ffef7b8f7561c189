-- The lessons journal (DESIGN §8): what went wrong and what to change, for analysts with psql.

CREATE TABLE lessons (
    id             bigserial PRIMARY KEY,
    type           text NOT NULL CHECK (type IN ('gate_failure', 'merge_hold', 'transient_exhaustion', 'degraded_deploy', 'process', 'other')),
    source         text NOT NULL CHECK (source IN ('auto', 'manual')),
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'rejected', 'fixed', 'duplicate')),
    work_item      text,
    task_id        bigint REFERENCES tasks (id) ON DELETE SET NULL,
    stage          text,
    agent          text,
    repo           text,
    root_cause     text NOT NULL,
    suggestion     text,
    attribution    text,
    target_repo    text,
    target_domain  text,
    related_task   text,
    detail         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE lessons IS 'Lessons journal: one row per thing that went wrong (auto-recorded or entered by an operator).';
COMMENT ON COLUMN lessons.type IS 'gate_failure, merge_hold, transient_exhaustion, degraded_deploy, process or other';
COMMENT ON COLUMN lessons.source IS 'auto (recorded by the orchestrator) or manual (POST /lessons)';
COMMENT ON COLUMN lessons.status IS 'open until triaged: accepted, rejected, fixed or duplicate (POST /lessons/{id})';
COMMENT ON COLUMN lessons.root_cause IS 'What went wrong, in a sentence';
COMMENT ON COLUMN lessons.suggestion IS 'What to change so it does not happen again';
COMMENT ON COLUMN lessons.attribution IS 'Who or what is responsible: agent, prompt, gate, repo, infrastructure, human';
COMMENT ON COLUMN lessons.target_repo IS 'Repository where the fix belongs (may differ from repo)';
COMMENT ON COLUMN lessons.target_domain IS 'Area where the fix belongs: prompts, gates, ci, deploy, docs, …';
COMMENT ON COLUMN lessons.detail IS 'Machine-readable context: gate message, job id, exit code, …';
CREATE INDEX lessons_status_idx ON lessons (status, created_at DESC);
CREATE INDEX lessons_work_item_idx ON lessons (work_item);
CREATE INDEX lessons_repo_idx ON lessons (repo, created_at DESC);

CREATE VIEW lessons_open AS
    SELECT id, type, source, work_item, stage, repo, root_cause, suggestion, attribution, created_at
    FROM lessons WHERE status = 'open' ORDER BY created_at DESC;
COMMENT ON VIEW lessons_open IS 'Untriaged lessons, newest first';

CREATE VIEW lessons_by_type AS
    SELECT type, repo, count(*) AS total, count(*) FILTER (WHERE status = 'open') AS open,
           min(created_at) AS first_seen, max(created_at) AS last_seen
    FROM lessons GROUP BY type, repo;
COMMENT ON VIEW lessons_by_type IS 'How often each kind of problem happens, per repository';
