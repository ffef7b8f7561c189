-- The disk watchdog and the build-cache pruner (issue #13).
--
-- disk_monitor: each replica measures the fill level of its paths (statvfs) and keeps the last
-- measurement here, one row per host and path, with whether it is above the threshold. The
-- alert state lives here, not in a replica's memory, so a restarted replica neither alerts a
-- second time for a disk that stayed full nor misses the all-clear.
CREATE TABLE disk_monitor (
    host          text NOT NULL,
    path          text NOT NULL,
    replica_id    text NOT NULL,
    used_percent  double precision NOT NULL,
    total_bytes   bigint NOT NULL,
    free_bytes    bigint NOT NULL,
    threshold     double precision NOT NULL,
    above         boolean NOT NULL DEFAULT false,
    measured_at   timestamptz NOT NULL DEFAULT now(),
    last_error    text,
    changed_at    timestamptz,
    PRIMARY KEY (host, path)
);
COMMENT ON TABLE disk_monitor IS 'Last disk fill measurement per host and path; above = alerted full, not yet back below.';
COMMENT ON COLUMN disk_monitor.above IS 'Set when the fill crossed the threshold (one alert), cleared when it fell below threshold - hysteresis (one all-clear).';

-- build_cache_prunes: the leader's build-cache prune command, one row (id 1), so any replica's
-- GET /queue shows the last run whoever ran it.
CREATE TABLE build_cache_prunes (
    id               int PRIMARY KEY CHECK (id = 1),
    replica_id       text NOT NULL,
    last_run_at      timestamptz NOT NULL DEFAULT now(),
    duration_ms      bigint NOT NULL,
    exit_status      int,
    reclaimed_bytes  bigint,
    total_reclaimed_bytes bigint NOT NULL DEFAULT 0,
    runs             int NOT NULL DEFAULT 1,
    last_error       text
);
COMMENT ON TABLE build_cache_prunes IS 'Last run of ORCH_BUILD_CACHE_PRUNE_COMMAND (exit status, reclaimed bytes when its output says so).';
