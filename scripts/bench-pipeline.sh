#!/usr/bin/env bash
# Orchestration overhead per stage (issue #4) with the repository gates on (issue #12): TASKS work
# items (default 20, so 80 agent stages) over REPOS repositories (default 4, round robin; each
# repository's serial gate lets one task past analysis at a time) walk the pipeline on one replica
# with the example agent, against local bare git remotes. From the database timestamps it prints,
# p50/p99 over every agent stage:
#   - claim → agent start: the run_stage job's claimed_at → the agent process spawned, minus the
#     git fetch + worktree time (reported separately);
#   - agent exit → next job claimable: the agent process exited → the next stage's job created
#     (claimable at once), minus the git commit + push time (reported separately).
# Uses ORCH_DATABASE_URL when set, else a throwaway PostgreSQL it starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages git curl

tasks="${TASKS:-20}"
repos="${REPOS:-4}"
bench_setup pipeline
{
  echo "repos:"
  for r in $(seq 0 $((repos - 1))); do
    seed_bare_remote "$work/remote-$r.git" "# bench $r" >/dev/null
    cat <<YAML
  - project: BENCH$r
    plane_project_id: 22222222-3333-4444-8555-00000000000$r
    repo: bench/project-$r
    clone_url: $work/remote-$r.git
    default_branch: main
    test_command: ["true"]
YAML
  done
  cat <<YAML
agents:
  default: { command: ["$python", "$PWD/examples/agent/agent.py"], timeout: 2m }
YAML
} >"$work/config.yaml"
port="$(free_port)"
ORCH_CONFIG="$work/config.yaml" ORCH_WORKDIR="$work/work" ORCH_PLANE_WEBHOOK_SECRET=bench ORCH_PORT="$port" \
  ORCH_HOST=127.0.0.1 ORCH_LOG_LEVEL=warning ORCH_MAX_CONCURRENCY="${CONCURRENCY:-4}" "$bin" serve --no-migrate >"$work/replica.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$port/health/ready" "$work/replica.log"

echo "== $tasks tasks over $repos repositories (auto, full track: 4 agent stages each; gates on, max_active_tasks 1) on one replica, example agent, local git remotes"
started=$(date +%s.%N)
python3 - "$tasks" "http://127.0.0.1:$port/webhook/plane" "$repos" <<'PY'
import hashlib, hmac, json, sys, urllib.request
count, url, repos = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for n in range(1, count + 1):
    body = json.dumps({"event": "issue", "action": "created", "data": {
        "id": f"bench-{n}", "sequence_id": n, "project": f"22222222-3333-4444-8555-00000000000{n % repos}",
        "name": f"Bench item {n}", "labels": [{"name": "auto"}]}}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Plane-Signature": hmac.new(b"bench", body, hashlib.sha256).hexdigest()})
    urllib.request.urlopen(request, timeout=10).read()
PY
q() { psql -X -A -t -q -c "$1"; }
for _ in $(seq 1 1200); do
  ended="$(q "SELECT count(*) FROM tasks WHERE status IN ('done', 'failed', 'cancelled')")"
  [ "$ended" -ge "$tasks" ] && break
  sleep 0.5
done
done_count="$(q "SELECT count(*) FROM tasks WHERE status = 'done'")"
elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "tasks done: $done_count of $tasks in ${elapsed}s"
q "SELECT format('  not done: %s %s/%s: %s', t.work_item, t.stage, t.status,
          (SELECT e.reason FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1))
   FROM tasks t WHERE t.status <> 'done' ORDER BY t.id"
q "
WITH runs AS (
  SELECT a.work_item, j.id AS job_id, j.claimed_at, a.spawned_at, a.exited_at, a.workspace_ms, a.git_after_ms
  FROM agent_runs a JOIN jobs j ON j.id = a.job_id
  WHERE a.exit_code = 0 AND a.spawned_at IS NOT NULL AND a.workspace_ms IS NOT NULL
), next_jobs AS (
  SELECT r.*, (SELECT min(n.created_at) FROM jobs n
               WHERE n.kind = 'run_stage' AND n.payload->>'work_item' = r.work_item AND n.id > r.job_id) AS next_created
  FROM runs r
), figures AS (
  -- A stage that passed into the serial gate's wait has its next job created when the gate
  -- opens: that wait is the gate's (measured below), not the pipeline's overhead.
  SELECT extract(epoch FROM r.spawned_at - r.claimed_at) * 1000 - r.workspace_ms AS start_ms,
         CASE WHEN NOT EXISTS (SELECT 1 FROM task_events e JOIN tasks t ON t.id = e.task_id
                               WHERE t.work_item = r.work_item AND e.event = 'gate_opened'
                                 AND e.at BETWEEN r.exited_at AND r.next_created)
              THEN extract(epoch FROM r.next_created - r.exited_at) * 1000 - r.git_after_ms END AS end_ms,
         r.workspace_ms, r.git_after_ms
  FROM next_jobs r
)
SELECT format(E'stages measured: %s\nclaim → agent start (excl. git): p50 %s ms  p99 %s ms\nagent exit → next job claimable (excl. git): p50 %s ms  p99 %s ms\ngit fetch + worktree: p50 %s ms  p99 %s ms\ngit commit + push: p50 %s ms  p99 %s ms',
  count(*),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY start_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY start_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY end_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY end_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY workspace_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY workspace_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY git_after_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY git_after_ms)::numeric, 1))
FROM figures"
q "
WITH opened AS (
  SELECT t.work_item, e.at AS opened_at FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE e.event = 'gate_opened'
), next_run AS (
  SELECT o.opened_at, a.spawned_at, a.workspace_ms FROM opened o
  JOIN LATERAL (SELECT spawned_at, workspace_ms FROM agent_runs r
                WHERE r.work_item = o.work_item AND r.stage <> 'analysis' AND r.spawned_at >= o.opened_at
                ORDER BY r.id LIMIT 1) a ON true
), figures AS (
  SELECT extract(epoch FROM spawned_at - opened_at) * 1000 AS gap_ms,
         extract(epoch FROM spawned_at - opened_at) * 1000 - coalesce(workspace_ms, 0) AS gap_excl_git_ms
  FROM next_run
)
SELECT format(E'serial gate hand-overs: %s\nprevious task done → next task of the repository has its agent started: p50 %s ms  p99 %s ms (excl. git: p50 %s ms  p99 %s ms)',
  count(*),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY gap_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY gap_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY gap_excl_git_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY gap_excl_git_ms)::numeric, 1))
FROM figures"
