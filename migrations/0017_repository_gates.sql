-- Repository gates (issue #12): per repository the serial gate's limit and its freeze.
--
-- max_active_tasks mirrors ORCH_CONFIG (every replica writes it at startup; NULL = no limit, the
-- serial gate switched off). A frozen repository starts no task past its first stage until an
-- operator unfreezes it (POST /serial-gate/unfreeze): a red merge commit or a degraded deploy
-- freezes it with the reason, the task that caused it and when.
CREATE TABLE repository_gates (
    repo text PRIMARY KEY,
    max_active_tasks int CHECK (max_active_tasks IS NULL OR max_active_tasks >= 1),
    frozen boolean NOT NULL DEFAULT false,
    frozen_reason text,
    frozen_work_item text,
    frozen_since timestamptz,
    unfrozen_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE repository_gates IS 'Per repository: the serial gate limit (from ORCH_CONFIG) and the freeze.';

-- Tasks of a repository by state: the serial gate counts the ones past their first stage and
-- opens for the oldest waiting one.
CREATE INDEX tasks_repo_status_idx ON tasks (repo, status);
