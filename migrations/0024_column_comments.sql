-- Every table and column commented, for analysts reading the schema with psql (`\d+ <table>`).
-- LessonJournalTests.testEveryTableAndColumnIsCommented keeps it so: a later migration adding an
-- uncommented column fails the suite.

COMMENT ON TABLE schema_migrations IS 'Migrations applied by the orchestrator (migrations/NNNN_name.sql), with checksums: they are append-only.';
COMMENT ON COLUMN schema_migrations.version IS 'The NNNN of the file name.';
COMMENT ON COLUMN schema_migrations.name IS 'The file name, e.g. 0005_lessons.sql.';
COMMENT ON COLUMN schema_migrations.checksum IS 'SHA-256 (hex) of the file as applied; a changed file stops the migrator.';
COMMENT ON COLUMN schema_migrations.applied_at IS 'When it was applied.';

COMMENT ON COLUMN replicas.id IS 'Unique per process start (a restarted process gets a new id).';
COMMENT ON COLUMN replicas.name IS 'Stable across restarts: ORCH_REPLICA_NAME, default the host name.';
COMMENT ON COLUMN replicas.host IS 'Host name the process runs on.';
COMMENT ON COLUMN replicas.pid IS 'Operating-system process id on host.';
COMMENT ON COLUMN replicas.role IS 'serve --role: all, api or worker.';
COMMENT ON COLUMN replicas.started_at IS 'When the process registered.';
COMMENT ON COLUMN replicas.heartbeat_at IS 'Last heartbeat (database clock); silent for ORCH_HEARTBEAT_TTL = dead.';
COMMENT ON COLUMN replicas.stopped_at IS 'Set on clean shutdown or when the leader found it dead; NULL while alive.';
COMMENT ON COLUMN replicas.leader_since IS 'Non-NULL only on the current leader: since when it leads.';

COMMENT ON COLUMN jobs.id IS 'Job id.';
COMMENT ON COLUMN jobs.kind IS 'What the job does: run_stage, process_webhook, notify_telegram, post_deploy_watch, …';
COMMENT ON COLUMN jobs.queue IS 'Queue it is claimed from (ORCH_QUEUES); notification channels have their own.';
COMMENT ON COLUMN jobs.payload IS 'The kind''s arguments; run_stage: work_item, stage, visit, attempt, feedback.';
COMMENT ON COLUMN jobs.status IS 'queued, running, completed, failed (for good) or cancelled.';
COMMENT ON COLUMN jobs.priority IS 'Lower runs first.';
COMMENT ON COLUMN jobs.run_at IS 'Not claimed before this time (backoff, postponement).';
COMMENT ON COLUMN jobs.max_attempts IS 'Claims allowed before a failing job fails for good.';
COMMENT ON COLUMN jobs.dedupe_key IS 'A job with this key exists once while queued or running (e.g. one run_stage per task stage visit and try).';
COMMENT ON COLUMN jobs.locked_by IS 'Replica id while running; the last owner afterwards.';
COMMENT ON COLUMN jobs.lease_expires_at IS 'A running job whose lease expired is rescued by the leader.';
COMMENT ON COLUMN jobs.cancel_requested IS 'Cancel asked while running: its owner stops it (orch_cancel).';
COMMENT ON COLUMN jobs.last_error IS 'Error of the last failed attempt, or why it was cancelled.';
COMMENT ON COLUMN jobs.created_at IS 'When it was enqueued.';
COMMENT ON COLUMN jobs.claimed_at IS 'Latest claim.';
COMMENT ON COLUMN jobs.finished_at IS 'When it completed, failed for good or was cancelled.';

COMMENT ON COLUMN webhook_deliveries.id IS 'Delivery id (ours).';
COMMENT ON COLUMN webhook_deliveries.source IS 'plane or gitea.';
COMMENT ON COLUMN webhook_deliveries.delivery_id IS 'X-Plane-Delivery / X-Gitea-Delivery, when sent.';
COMMENT ON COLUMN webhook_deliveries.body_sha256 IS 'Hex SHA-256 of the raw body (catches a resend under a new delivery id).';
COMMENT ON COLUMN webhook_deliveries.event IS 'The event: issue.created, pull_request, status, …';
COMMENT ON COLUMN webhook_deliveries.status IS 'pending, processed, ignored (with reason) or failed.';
COMMENT ON COLUMN webhook_deliveries.reason IS 'Why it was ignored or failed.';
COMMENT ON COLUMN webhook_deliveries.payload IS 'The delivery body.';
COMMENT ON COLUMN webhook_deliveries.job_id IS 'The process_webhook job.';
COMMENT ON COLUMN webhook_deliveries.received_at IS 'When it was accepted.';
COMMENT ON COLUMN webhook_deliveries.processed_at IS 'When processing finished.';

COMMENT ON COLUMN tasks.id IS 'Task id.';
COMMENT ON COLUMN tasks.work_item IS 'The Plane work item, <PROJECT>-<sequence>, e.g. ORCH-98.';
COMMENT ON COLUMN tasks.plane_issue_id IS 'Plane''s issue uuid (one task per issue).';
COMMENT ON COLUMN tasks.plane_project_id IS 'Plane''s project uuid.';
COMMENT ON COLUMN tasks.repo IS 'Gitea owner/name the task works on.';
COMMENT ON COLUMN tasks.title IS 'Work item title.';
COMMENT ON COLUMN tasks.description IS 'Work item description (reaches the agent''s prompt).';
COMMENT ON COLUMN tasks.labels IS 'Work item label names (auto, bug, STOP, …).';
COMMENT ON COLUMN tasks.plane_state IS 'Plane''s state name, kept current.';
COMMENT ON COLUMN tasks.stage IS 'analysis, architecture, development, review, merge, deploy or done.';
COMMENT ON COLUMN tasks.status IS 'active, awaiting_approval, blocked, waiting, held, cancelled, failed or done.';
COMMENT ON COLUMN tasks.track IS 'full, or bug (skips architecture).';
COMMENT ON COLUMN tasks.auto IS 'The auto label: stages pass without waiting for approval.';
COMMENT ON COLUMN tasks.branch IS 'The task branch (orch/<WORK-ITEM>).';
COMMENT ON COLUMN tasks.pr_number IS 'Its pull request in Gitea.';
COMMENT ON COLUMN tasks.head_sha IS 'Head of the task branch as last pushed or seen.';
COMMENT ON COLUMN tasks.merge_sha IS 'The merge commit, once merged.';
COMMENT ON COLUMN tasks.created_at IS 'When the task was created.';
COMMENT ON COLUMN tasks.updated_at IS 'Last change to the row.';
COMMENT ON COLUMN tasks.pushed_at IS 'Last push to the task branch seen from Gitea.';

COMMENT ON COLUMN task_events.id IS 'Event id (notifications follow it as a cursor).';
COMMENT ON COLUMN task_events.task_id IS 'The task.';
COMMENT ON COLUMN task_events.event IS 'The state-machine event, e.g. stage_passed, gate_failed, held, cancel.';
COMMENT ON COLUMN task_events.from_stage IS 'Stage before.';
COMMENT ON COLUMN task_events.to_stage IS 'Stage after.';
COMMENT ON COLUMN task_events.from_status IS 'Status before.';
COMMENT ON COLUMN task_events.to_status IS 'Status after.';
COMMENT ON COLUMN task_events.reason IS 'Why (gate message, operator reason), redacted of secrets.';
COMMENT ON COLUMN task_events.actor IS 'Who: system, admin, plane, dependencies, …';
COMMENT ON COLUMN task_events.at IS 'When.';

COMMENT ON COLUMN lessons.id IS 'Lesson id (POST /lessons/{id}).';
COMMENT ON COLUMN lessons.work_item IS 'The work item it is about.';
COMMENT ON COLUMN lessons.task_id IS 'The task it is about (NULL when none or deleted).';
COMMENT ON COLUMN lessons.stage IS 'Stage it happened in.';
COMMENT ON COLUMN lessons.agent IS 'Agent role involved (default, reviewer, …).';
COMMENT ON COLUMN lessons.repo IS 'Repository it happened in.';
COMMENT ON COLUMN lessons.related_task IS 'Another work item it relates to.';
COMMENT ON COLUMN lessons.created_at IS 'When it was recorded.';
COMMENT ON COLUMN lessons.updated_at IS 'Last change (re-classification).';

COMMENT ON COLUMN commit_statuses.repo IS 'Gitea owner/name.';
COMMENT ON COLUMN commit_statuses.sha IS 'The commit.';
COMMENT ON COLUMN commit_statuses.context IS 'The status context, e.g. ci/build.';
COMMENT ON COLUMN commit_statuses.state IS 'pending, success, failure, error or warning.';
COMMENT ON COLUMN commit_statuses.status_id IS 'Gitea''s status id: a later status has a higher one and wins.';
COMMENT ON COLUMN commit_statuses.target_url IS 'Link to the CI run.';
COMMENT ON COLUMN commit_statuses.description IS 'Gitea''s description of the status.';
COMMENT ON COLUMN commit_statuses.received_at IS 'When it arrived.';

COMMENT ON COLUMN maintenance_runs.duty IS 'The leader duty: rescue, stranded-tasks, replica-sweep, prune, webhook-prune, …';
COMMENT ON COLUMN maintenance_runs.replica_id IS 'The leader that ran it last.';
COMMENT ON COLUMN maintenance_runs.last_run_at IS 'When it last ran.';
COMMENT ON COLUMN maintenance_runs.last_affected IS 'Rows the last run changed.';
COMMENT ON COLUMN maintenance_runs.total_affected IS 'Rows changed over all runs.';
COMMENT ON COLUMN maintenance_runs.runs IS 'Runs so far.';
COMMENT ON COLUMN maintenance_runs.last_error IS 'Error of the last run; NULL when it succeeded.';

COMMENT ON COLUMN plane_projects.project_id IS 'Plane''s project uuid.';
COMMENT ON COLUMN plane_projects.identifier IS 'Its identifier, e.g. ORCH.';
COMMENT ON COLUMN plane_projects.name IS 'Its name.';
COMMENT ON COLUMN plane_projects.fetched_at IS 'When it was fetched from the Plane API.';

COMMENT ON COLUMN agent_runs.id IS 'Run id (ORCH_RUN_ID; in the log file name).';
COMMENT ON COLUMN agent_runs.task_id IS 'The task.';
COMMENT ON COLUMN agent_runs.work_item IS 'The work item.';
COMMENT ON COLUMN agent_runs.job_id IS 'The run_stage job that started it.';
COMMENT ON COLUMN agent_runs.stage IS 'The stage it ran for.';
COMMENT ON COLUMN agent_runs.role IS 'The agents[...] key: default, reviewer, …';
COMMENT ON COLUMN agent_runs.replica_id IS 'The replica that started it.';
COMMENT ON COLUMN agent_runs.host IS 'Host it ran on.';
COMMENT ON COLUMN agent_runs.pid IS 'Process id on host.';
COMMENT ON COLUMN agent_runs.process_start IS '/proc/<pid>/stat starttime (clock ticks since boot): with pid, identifies the process.';
COMMENT ON COLUMN agent_runs.command IS 'The command line.';
COMMENT ON COLUMN agent_runs.log_path IS 'Its log on the replica''s host (ORCH_WORKDIR/logs/…).';
COMMENT ON COLUMN agent_runs.started_at IS 'When the row was created, just before the spawn.';
COMMENT ON COLUMN agent_runs.ended_at IS 'When it ended; NULL while running.';
COMMENT ON COLUMN agent_runs.exit_code IS 'Exit status or 128 + signal; -1: closed without one (orphan, replica gone).';
COMMENT ON COLUMN agent_runs.timed_out IS 'Killed at its timeout.';
COMMENT ON COLUMN agent_runs.input_tokens IS 'Input tokens reported by the agent.';
COMMENT ON COLUMN agent_runs.output_tokens IS 'Output tokens reported by the agent.';
COMMENT ON COLUMN agent_runs.cache_read_tokens IS 'Prompt-cache tokens read.';
COMMENT ON COLUMN agent_runs.cache_write_tokens IS 'Prompt-cache tokens written.';
COMMENT ON COLUMN agent_runs.cost_usd IS 'Cost in US dollars reported by the agent; NULL = unknown (a plain-text agent).';
COMMENT ON COLUMN agent_runs.model IS 'Model reported by the agent.';
COMMENT ON COLUMN agent_runs.result_subtype IS 'The agent''s result subtype, e.g. success, error_max_turns.';
COMMENT ON COLUMN agent_runs.num_turns IS 'Turns the agent reported.';
COMMENT ON COLUMN agent_runs.is_error IS 'The agent reported an error result.';
COMMENT ON COLUMN agent_runs.error IS 'Why it failed to start or ended abnormally (timed out, cancelled, …).';
COMMENT ON COLUMN agent_runs.spawned_at IS 'When the process was spawned.';
COMMENT ON COLUMN agent_runs.exited_at IS 'When the process exited.';

COMMENT ON COLUMN circuit_breakers.name IS 'The breaker: agents.';
COMMENT ON COLUMN circuit_breakers.failures IS 'Transient failures in the current window.';
COMMENT ON COLUMN circuit_breakers.window_started_at IS 'Start of the current window.';
COMMENT ON COLUMN circuit_breakers.open_until IS 'Open while now() < open_until.';
COMMENT ON COLUMN circuit_breakers.opened_count IS 'Times it opened.';
COMMENT ON COLUMN circuit_breakers.last_reason IS 'The last failure that counted.';
COMMENT ON COLUMN circuit_breakers.updated_at IS 'Last change.';

COMMENT ON COLUMN notification_cursor.name IS 'The cursor: task_events.';
COMMENT ON COLUMN notification_cursor.last_event_id IS 'Last task_events id turned into notification jobs.';
COMMENT ON COLUMN notification_cursor.updated_at IS 'Last change.';

COMMENT ON COLUMN repository_gates.repo IS 'Gitea owner/name.';
COMMENT ON COLUMN repository_gates.max_active_tasks IS 'Serial gate: tasks past their first stage at once; NULL = no limit (gate off).';
COMMENT ON COLUMN repository_gates.frozen IS 'Frozen: no task starts past its first stage until POST /serial-gate/unfreeze.';
COMMENT ON COLUMN repository_gates.frozen_reason IS 'Why it was frozen (red merge commit, degraded deploy).';
COMMENT ON COLUMN repository_gates.frozen_work_item IS 'The task whose merge or deploy froze it.';
COMMENT ON COLUMN repository_gates.frozen_since IS 'When it was frozen.';
COMMENT ON COLUMN repository_gates.unfrozen_at IS 'When it was last unfrozen.';
COMMENT ON COLUMN repository_gates.updated_at IS 'Last change.';

COMMENT ON COLUMN merge_leases.repo IS 'Gitea owner/name.';
COMMENT ON COLUMN merge_leases.work_item IS 'The task merging.';
COMMENT ON COLUMN merge_leases.replica_id IS 'The replica holding the lease.';
COMMENT ON COLUMN merge_leases.backend_pid IS 'Database backend holding the advisory lock (join pg_locks: stale when it holds none).';
COMMENT ON COLUMN merge_leases.since IS 'Held since.';

COMMENT ON COLUMN deploy_watches.id IS 'Watch id.';
COMMENT ON COLUMN deploy_watches.work_item IS 'The task deployed.';
COMMENT ON COLUMN deploy_watches.repo IS 'Its repository.';
COMMENT ON COLUMN deploy_watches.visit IS 'The deploy stage visit it watches.';
COMMENT ON COLUMN deploy_watches.merge_sha IS 'The commit deployed.';
COMMENT ON COLUMN deploy_watches.health_url IS 'The URL probed.';
COMMENT ON COLUMN deploy_watches.started_at IS 'Start of the window.';
COMMENT ON COLUMN deploy_watches.probes IS 'Probes so far.';
COMMENT ON COLUMN deploy_watches.failed_probes IS 'Failed probes so far.';
COMMENT ON COLUMN deploy_watches.last_probe_at IS 'When it last probed.';
COMMENT ON COLUMN deploy_watches.last_status IS 'HTTP status of the last probe.';
COMMENT ON COLUMN deploy_watches.last_error IS 'Error of the last probe.';
COMMENT ON COLUMN deploy_watches.reason IS 'Why it ended so.';
COMMENT ON COLUMN deploy_watches.finished_at IS 'When it ended; NULL while watching.';

COMMENT ON COLUMN coverage_baselines.repo IS 'Gitea owner/name.';
COMMENT ON COLUMN coverage_baselines.baseline IS 'The baseline, percent.';
COMMENT ON COLUMN coverage_baselines.updated_at IS 'When it was set.';

COMMENT ON COLUMN coverage_measurements.id IS 'Measurement id.';
COMMENT ON COLUMN coverage_measurements.work_item IS 'The task.';
COMMENT ON COLUMN coverage_measurements.repo IS 'Its repository.';
COMMENT ON COLUMN coverage_measurements.percent IS 'Coverage measured, percent.';
COMMENT ON COLUMN coverage_measurements.head_sha IS 'The task head measured.';
COMMENT ON COLUMN coverage_measurements.measured_at IS 'When.';

COMMENT ON COLUMN task_dependencies.work_item IS 'The dependent task.';
COMMENT ON COLUMN task_dependencies.depends_on IS 'The work item it waits for (may have no task yet).';
COMMENT ON COLUMN task_dependencies.source IS 'description (Depends on / Blocked by lines) or api (POST /tasks/{wi}/dependencies).';
COMMENT ON COLUMN task_dependencies.created_at IS 'When the edge was added.';

COMMENT ON COLUMN task_dependency_refusals.id IS 'Refusal id.';
COMMENT ON COLUMN task_dependency_refusals.work_item IS 'The dependent asked for.';
COMMENT ON COLUMN task_dependency_refusals.depends_on IS 'The dependency refused.';
COMMENT ON COLUMN task_dependency_refusals.source IS 'description or api.';
COMMENT ON COLUMN task_dependency_refusals.cycle IS 'The cycle it would have closed, as work items.';
COMMENT ON COLUMN task_dependency_refusals.at IS 'When.';
