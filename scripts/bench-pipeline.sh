#!/usr/bin/env bash
# Orchestration overhead per stage (issue #4): TASKS work items (default 50, so 200 agent stages)
# walk the pipeline on one replica with the example agent, against a local bare git remote. From the
# database timestamps it prints, p50/p99 over every agent stage:
#   - claim → agent start: the run_stage job's claimed_at → the agent process spawned, minus the
#     git fetch + worktree time (reported separately);
#   - agent exit → next job claimable: the agent process exited → the next stage's job created
#     (claimable at once), minus the git commit + push time (reported separately).
# Uses ORCH_DATABASE_URL when set, else a throwaway PostgreSQL it starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages git curl

tasks="${TASKS:-50}"
pids=()
work="$(mktemp -d /tmp/orch-bench-pipeline.XXXXXX)"
chmod 755 "$work"
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  throwaway_pg_stop
  rm -rf "$work"
}
trap cleanup EXIT
bench_database_and_binary

remote="$work/remote.git"
seed_bare_remote "$remote" "# bench"
python="$(command -v /usr/bin/python3 || command -v python3)"
cat >"$work/config.yaml" <<YAML
repos:
  - project: BENCH
    plane_project_id: 22222222-3333-4444-8555-666666666666
    repo: bench/project
    clone_url: $remote
    default_branch: main
    test_command: ["true"]
agents:
  default: { command: ["$python", "$PWD/examples/agent/agent.py"], timeout: 2m }
YAML
port="$(free_port)"
ORCH_CONFIG="$work/config.yaml" ORCH_WORKDIR="$work/work" ORCH_PLANE_WEBHOOK_SECRET=bench ORCH_PORT="$port" \
  ORCH_HOST=127.0.0.1 ORCH_LOG_LEVEL=warning ORCH_MAX_CONCURRENCY="${CONCURRENCY:-4}" "$bin" serve --no-migrate >"$work/replica.log" 2>&1 &
pids+=($!)
wait_ready "http://127.0.0.1:$port/health/ready" "$work/replica.log"

echo "== $tasks tasks (auto, full track: 4 agent stages each) on one replica, example agent, local git remote"
started=$(date +%s.%N)
python3 - "$tasks" "http://127.0.0.1:$port/webhook/plane" <<'PY'
import hashlib, hmac, json, sys, urllib.request
count, url = int(sys.argv[1]), sys.argv[2]
for n in range(1, count + 1):
    body = json.dumps({"event": "issue", "action": "created", "data": {
        "id": f"bench-{n}", "sequence_id": n, "project": "22222222-3333-4444-8555-666666666666",
        "name": f"Bench item {n}", "labels": [{"name": "auto"}]}}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Plane-Signature": hmac.new(b"bench", body, hashlib.sha256).hexdigest()})
    urllib.request.urlopen(request, timeout=10).read()
PY
q() { psql -X -A -t -q -c "$1"; }
for _ in $(seq 1 1200); do
  done_count="$(q "SELECT count(*) FROM tasks WHERE status = 'done'")"
  ended="$(q "SELECT count(*) FROM tasks WHERE status IN ('done', 'failed', 'cancelled')")"
  [ "$ended" -ge "$tasks" ] && break
  sleep 0.5
done
elapsed=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "tasks done: $done_count of $tasks in ${elapsed}s"
q "
WITH runs AS (
  SELECT a.work_item, j.id AS job_id, j.claimed_at, a.spawned_at, a.exited_at, a.workspace_ms, a.git_after_ms
  FROM agent_runs a JOIN jobs j ON j.id = a.job_id
  WHERE a.exit_code = 0 AND a.spawned_at IS NOT NULL AND a.workspace_ms IS NOT NULL
), figures AS (
  SELECT extract(epoch FROM r.spawned_at - r.claimed_at) * 1000 - r.workspace_ms AS start_ms,
         extract(epoch FROM (SELECT min(n.created_at) FROM jobs n
                             WHERE n.kind = 'run_stage' AND n.payload->>'work_item' = r.work_item AND n.id > r.job_id)
                 - r.exited_at) * 1000 - r.git_after_ms AS end_ms,
         r.workspace_ms, r.git_after_ms
  FROM runs r
)
SELECT format(E'stages measured: %s\nclaim → agent start (excl. git): p50 %s ms  p99 %s ms\nagent exit → next job claimable (excl. git): p50 %s ms  p99 %s ms\ngit fetch + worktree: p50 %s ms  p99 %s ms\ngit commit + push: p50 %s ms  p99 %s ms',
  count(*),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY start_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY start_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY end_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY end_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY workspace_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY workspace_ms)::numeric, 1),
  round(percentile_cont(0.5) WITHIN GROUP (ORDER BY git_after_ms)::numeric, 1), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY git_after_ms)::numeric, 1))
FROM figures WHERE end_ms IS NOT NULL"
