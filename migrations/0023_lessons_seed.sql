-- The lessons journal as the seed service kept it (issue #13), and views for analysts.
--
-- Lesson types are free text, as in the seed: operators name their own, and the detectors'
-- types (docs/lessons.md) are only the ones the orchestrator records itself. A lesson recorded
-- with the seed's body may leave root_cause out (empty). Automatic lessons name the agent run
-- they are about, and are deduplicated within ORCH_LESSONS_DEDUP_WINDOW by (type, work item,
-- stage, root cause): the index below serves that look-up.

ALTER TABLE lessons DROP CONSTRAINT IF EXISTS lessons_type_check;
ALTER TABLE lessons ADD CONSTRAINT lessons_type_not_empty CHECK (btrim(type) <> '');
ALTER TABLE lessons ALTER COLUMN root_cause SET DEFAULT '';
ALTER TABLE lessons ADD COLUMN agent_run_id bigint REFERENCES agent_runs (id) ON DELETE SET NULL;
COMMENT ON COLUMN lessons.type IS 'Free text. Recorded by the orchestrator (source auto): gate_failure, merge_hold, transient_exhaustion, degraded_deploy, stage_timeout, cancelled_mid_stage, other; operators use their own (docs/lessons.md).';
COMMENT ON COLUMN lessons.root_cause IS 'What went wrong, in a sentence (empty when a manual lesson gave none). Automatic lessons keep run ids and paths out of it, so repeats compare equal.';
COMMENT ON COLUMN lessons.agent_run_id IS 'The agent run the lesson is about (agent_runs.id); its log path is in detail.log_path.';
COMMENT ON COLUMN lessons.detail IS 'Machine-readable context: run_id and log_path of the agent run, job ids, timeout, gate message, …';
CREATE INDEX lessons_dedup_idx ON lessons (type, work_item, stage, created_at DESC) WHERE source = 'auto';

-- What keeps going wrong, week by week.
CREATE VIEW lessons_per_week AS
    SELECT date_trunc('week', created_at) AS week, type, repo, count(*) AS lessons,
           count(*) FILTER (WHERE status = 'open') AS open, count(DISTINCT work_item) AS work_items
    FROM lessons GROUP BY 1, 2, 3;
COMMENT ON VIEW lessons_per_week IS 'Lessons per ISO week (Monday), type and repository, with how many are still open.';

-- The same root cause again and again is what a prompt, gate or runbook should fix.
CREATE VIEW lessons_recurring_root_causes AS
    SELECT type, root_cause, count(*) AS occurrences, count(DISTINCT work_item) AS work_items,
           array_agg(DISTINCT repo) FILTER (WHERE repo IS NOT NULL) AS repos,
           min(created_at) AS first_seen, max(created_at) AS last_seen,
           count(*) FILTER (WHERE status = 'open') AS open
    FROM lessons WHERE root_cause <> ''
    GROUP BY type, root_cause HAVING count(*) > 1;
COMMENT ON VIEW lessons_recurring_root_causes IS 'Root causes recorded more than once (same type and text), with how many work items and repositories they hit.';

-- Every agent run with how it ended, its repository and its cost, for cost questions.
CREATE VIEW agent_run_outcomes AS
    SELECT r.id AS run_id, coalesce(t.repo, '') AS repo, r.work_item, r.stage, r.role, r.started_at, r.ended_at,
           CASE WHEN r.ended_at IS NULL THEN 'running'
                WHEN r.error = 'cancelled' THEN 'cancelled'
                WHEN r.timed_out THEN 'timed_out'
                WHEN r.exit_code <> 0 OR r.is_error THEN 'failed'
                ELSE 'succeeded' END AS outcome,
           t.status AS task_status, r.cost_usd, r.input_tokens, r.output_tokens,
           extract(epoch FROM r.ended_at - r.started_at) AS seconds, r.log_path
    FROM agent_runs r LEFT JOIN tasks t ON t.id = r.task_id;
COMMENT ON VIEW agent_run_outcomes IS 'Agent runs with their outcome (running, succeeded, failed, timed_out, cancelled), repository, task status, cost and log path.';

CREATE VIEW run_costs_by_repo AS
    SELECT repo, outcome, count(*) AS runs, coalesce(sum(cost_usd), 0) AS cost_usd,
           count(*) FILTER (WHERE cost_usd IS NULL) AS runs_without_cost,
           coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(output_tokens), 0) AS output_tokens
    FROM agent_run_outcomes GROUP BY repo, outcome;
COMMENT ON VIEW run_costs_by_repo IS 'Agent runs and their cost per repository and outcome; failed, timed_out and cancelled are money spent for nothing.';

-- A stage's wall time runs from the event that entered it (or the task's creation) to the one
-- that left it, waits for approval included.
CREATE VIEW stage_visits AS
    SELECT t.repo, e.task_id, t.work_item, e.from_stage AS stage,
           coalesce(lag(e.at) OVER (PARTITION BY e.task_id ORDER BY e.id), t.created_at) AS entered_at,
           e.at AS left_at
    FROM task_events e JOIN tasks t ON t.id = e.task_id
    WHERE e.from_stage <> e.to_stage;
COMMENT ON VIEW stage_visits IS 'Each time a task left a stage: when it had entered it and when it left (wall time, approval waits included).';

CREATE VIEW stage_stats_by_repo AS
    WITH durations AS (
        SELECT coalesce(repo, '') AS repo, stage, count(*) AS visits,
               round((avg(extract(epoch FROM left_at - entered_at)) / 60)::numeric, 1) AS avg_minutes,
               round((max(extract(epoch FROM left_at - entered_at)) / 60)::numeric, 1) AS max_minutes
        FROM stage_visits GROUP BY 1, 2
    ), retries AS (
        SELECT coalesce(t.repo, '') AS repo, e.from_stage AS stage,
               count(*) FILTER (WHERE e.event IN ('stage_failed', 'stage_failed_final')) AS gate_failures,
               count(*) FILTER (WHERE e.event = 'changes_requested') AS changes_requested,
               count(*) FILTER (WHERE e.event = 'retry') AS operator_retries
        FROM task_events e JOIN tasks t ON t.id = e.task_id GROUP BY 1, 2
    ), runs AS (
        SELECT coalesce(t.repo, '') AS repo, coalesce(r.stage, '') AS stage, count(*) AS agent_runs,
               count(DISTINCT r.task_id) AS tasks
        FROM agent_runs r JOIN tasks t ON t.id = r.task_id GROUP BY 1, 2
    ), keys AS (
        SELECT repo, stage FROM durations UNION SELECT repo, stage FROM retries UNION SELECT repo, stage FROM runs
    )
    SELECT k.repo, k.stage, coalesce(d.visits, 0) AS visits, d.avg_minutes, d.max_minutes,
           coalesce(x.gate_failures, 0) AS gate_failures, coalesce(x.changes_requested, 0) AS changes_requested,
           coalesce(x.operator_retries, 0) AS operator_retries, coalesce(r.agent_runs, 0) AS agent_runs,
           coalesce(r.tasks, 0) AS tasks_with_runs
    FROM keys k
    LEFT JOIN durations d ON d.repo = k.repo AND d.stage = k.stage
    LEFT JOIN retries x ON x.repo = k.repo AND x.stage = k.stage
    LEFT JOIN runs r ON r.repo = k.repo AND r.stage = k.stage;
COMMENT ON VIEW stage_stats_by_repo IS 'Per repository and stage: visits finished and their wall time, gate failures, review rounds, operator retries and agent runs.';

-- Tasks that wait on a person, and why: held (merge or deploy), blocked (dependencies), waiting
-- (serial gate), failed, or in a frozen repository.
CREATE VIEW tasks_held_or_frozen AS
    SELECT t.work_item, t.repo, t.stage, t.status, t.updated_at AS since, last.reason, last.event AS last_event,
           coalesce(g.frozen, false) AS repo_frozen, g.frozen_reason, g.frozen_work_item AS frozen_by, g.frozen_since
    FROM tasks t
    LEFT JOIN repository_gates g ON g.repo = t.repo
    LEFT JOIN LATERAL (
        SELECT e.reason, e.event FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1
    ) last ON true
    WHERE t.status IN ('held', 'blocked', 'waiting', 'failed')
       OR (coalesce(g.frozen, false) AND t.status NOT IN ('done', 'cancelled'));
COMMENT ON VIEW tasks_held_or_frozen IS 'Tasks held, blocked, waiting, failed or in a frozen repository, with the last event''s reason and the freeze.';

-- A read-only role for analysts, when the migrating user may create roles (else skipped with a
-- notice: an administrator creates it and runs the GRANTs below). Roles are per cluster, so it
-- may exist already (another database of the same cluster).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orchestrator_analyst') THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolcreaterole OR rolsuper)) THEN
            RAISE NOTICE 'orchestrator_analyst not created: % may not create roles', current_user;
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE orchestrator_analyst NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a migration of another database
        END;
    END IF;
    BEGIN
        GRANT USAGE ON SCHEMA public TO orchestrator_analyst;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO orchestrator_analyst;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO orchestrator_analyst;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'orchestrator_analyst not granted: %', SQLERRM;
    END;
END
$$;
