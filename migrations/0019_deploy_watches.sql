-- The post-deploy watch (issue #12): after deploy_command succeeds on a repository with a
-- health_url, its post_deploy_watch job probes the URL for the window. The watch's state lives
-- here, not in a replica: a replica that dies mid-watch leaves the row, and whichever replica
-- runs the job next continues it (the window still ends started_at + window, counts kept).
--
-- One watch per deploy stage visit: the deploy job creates the row and enqueues the watch job in
-- the transaction that completes itself, so a crash in between cannot strand the task.
CREATE TABLE deploy_watches (
    id bigserial PRIMARY KEY,
    work_item text NOT NULL,
    repo text NOT NULL,
    visit int NOT NULL,
    merge_sha text NOT NULL,
    health_url text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    probes int NOT NULL DEFAULT 0,
    failed_probes int NOT NULL DEFAULT 0,
    consecutive_failures int NOT NULL DEFAULT 0,
    last_probe_at timestamptz,
    last_status int,
    last_error text,
    result text NOT NULL DEFAULT 'watching' CHECK (result IN ('watching', 'healthy', 'degraded', 'stopped')),
    reason text,
    finished_at timestamptz,
    UNIQUE (work_item, visit)
);
COMMENT ON TABLE deploy_watches IS 'Post-deploy watches of health_url: one per deploy stage visit, resumable by any replica.';
COMMENT ON COLUMN deploy_watches.consecutive_failures IS 'Failed probes in a row; reaching post_deploy.failures makes the deploy degraded.';
COMMENT ON COLUMN deploy_watches.result IS 'watching; healthy (the window passed); degraded (the repository was frozen, the task held); stopped (the task left the deploy visit).';

-- The /queue post_deploy block: watches in progress and the latest results.
CREATE INDEX deploy_watches_watching_idx ON deploy_watches (started_at) WHERE result = 'watching';
CREATE INDEX deploy_watches_finished_idx ON deploy_watches (finished_at DESC) WHERE finished_at IS NOT NULL;
