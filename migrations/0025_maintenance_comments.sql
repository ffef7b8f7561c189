-- Every column commented (docs/lessons.md: analysts read the schema with \d+): the disk
-- watchdog's and the build-cache pruner's columns, added by 0022.
COMMENT ON COLUMN disk_monitor.host IS 'Host of the replica that measured the path.';
COMMENT ON COLUMN disk_monitor.path IS 'The measured path (ORCH_DISK_MONITOR_PATHS; the work dir by default).';
COMMENT ON COLUMN disk_monitor.replica_id IS 'Replica that took the last measurement.';
COMMENT ON COLUMN disk_monitor.used_percent IS 'Fill level of the file system holding the path, in percent (statvfs).';
COMMENT ON COLUMN disk_monitor.total_bytes IS 'Size of that file system.';
COMMENT ON COLUMN disk_monitor.free_bytes IS 'Bytes available to the service on it.';
COMMENT ON COLUMN disk_monitor.threshold IS 'ORCH_DISK_MONITOR_THRESHOLD in force when measured, in percent.';
COMMENT ON COLUMN disk_monitor.measured_at IS 'When the last measurement was taken.';
COMMENT ON COLUMN disk_monitor.last_error IS 'Why the last measurement failed (the previous figures are kept); NULL when it succeeded.';
COMMENT ON COLUMN disk_monitor.changed_at IS 'When above last changed (the alert or the all-clear).';
COMMENT ON COLUMN build_cache_prunes.id IS 'Always 1: one row, the last run.';
COMMENT ON COLUMN build_cache_prunes.replica_id IS 'Replica (the leader then) that ran the command.';
COMMENT ON COLUMN build_cache_prunes.last_run_at IS 'When the last run ended.';
COMMENT ON COLUMN build_cache_prunes.duration_ms IS 'How long the last run took.';
COMMENT ON COLUMN build_cache_prunes.exit_status IS 'Exit status of the last run; NULL when it could not start or was killed at its timeout.';
COMMENT ON COLUMN build_cache_prunes.reclaimed_bytes IS 'Bytes the last run said it reclaimed (e.g. docker''s Total reclaimed space); NULL when it did not say.';
COMMENT ON COLUMN build_cache_prunes.total_reclaimed_bytes IS 'Sum of reclaimed_bytes over all runs.';
COMMENT ON COLUMN build_cache_prunes.runs IS 'How many runs were recorded.';
COMMENT ON COLUMN build_cache_prunes.last_error IS 'What went wrong in the last run (non-zero exit, timeout, could not start); NULL when it succeeded.';
