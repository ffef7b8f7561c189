-- CI facts from Gitea (DESIGN §6): commit statuses per (repo, sha, context), and on each task the
-- combined CI state of its PR head and of its merge commit. Statuses may arrive before the pull
-- request that makes their sha a task's head, or out of order: each context keeps the status with
-- the highest Gitea status id, and a task's combined state is recomputed whenever its head or
-- merge commit changes.

CREATE TABLE commit_statuses (
    repo        text NOT NULL,                 -- Gitea owner/name
    sha         text NOT NULL,
    context     text NOT NULL,                 -- e.g. 'ci/build'
    state       text NOT NULL CHECK (state IN ('pending', 'success', 'failure', 'error', 'warning')),
    status_id   bigint NOT NULL DEFAULT 0,     -- Gitea's status id: a later status has a higher id
    target_url  text,
    description text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, sha, context)
);
COMMENT ON TABLE commit_statuses IS 'Latest Gitea commit status per repository, commit and context.';

ALTER TABLE tasks
    ADD COLUMN head_ci_state  text CHECK (head_ci_state IN ('pending', 'success', 'failure')),
    ADD COLUMN merge_ci_state text CHECK (merge_ci_state IN ('pending', 'success', 'failure')),
    ADD COLUMN pushed_at      timestamptz;    -- last push to the task's branch seen from Gitea
COMMENT ON COLUMN tasks.head_ci_state IS 'Combined CI of head_sha: failure if any context failed or errored, else pending if any is pending, else success; NULL = no status yet.';
COMMENT ON COLUMN tasks.merge_ci_state IS 'Combined CI of merge_sha, as head_ci_state.';

-- The combined state of one commit, as Gitea's combined status would report it.
CREATE FUNCTION combined_ci_state(p_repo text, p_sha text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN count(*) = 0 THEN NULL
        WHEN bool_or(state IN ('failure', 'error')) THEN 'failure'
        WHEN bool_or(state = 'pending') THEN 'pending'
        ELSE 'success'
    END
    FROM commit_statuses WHERE repo = p_repo AND sha = p_sha
$$;
