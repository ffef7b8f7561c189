-- Budgets (issue #15): spend is summed from agent_runs.cost_usd per task, per repository per UTC
-- day and for all work per UTC day before each agent run; today's runs are found by start time.
-- budget_warnings remembers which 80 % warnings were sent, so each is sent once per task or day.
CREATE INDEX agent_runs_started_at_idx ON agent_runs (started_at);
CREATE TABLE budget_warnings (
    scope   text NOT NULL CHECK (scope IN ('task', 'repo_day', 'day')),
    subject text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject)
);
COMMENT ON TABLE budget_warnings IS 'The 80 % budget warnings sent, one per task, per repository and day, and per day.';
COMMENT ON COLUMN budget_warnings.scope IS 'Which budget: task (per_task_usd), repo_day (per_repo_day_usd) or day (per_day_usd).';
COMMENT ON COLUMN budget_warnings.subject IS 'What it is about: the work item, the repository and UTC day (acme/orch 2026-12-06), or the UTC day.';
COMMENT ON COLUMN budget_warnings.sent_at IS 'When the warning was sent.';
