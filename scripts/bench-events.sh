#!/usr/bin/env bash
# Live output under load (issue #15 item 4): AGENTS agents (default 10) on one replica each print
# about RATE stream-json events a second (default 200) for DURATION seconds (default 30), while one
# Server-Sent-Events follower per run reads its stream from the replica. Prints, as name: value
# lines: events printed (counted in the runs' log files) and stored, the followers' lag (print →
# received) p50/p99/max, and the replica's CPU time per 1,000 events stored.
# Uses ORCH_DATABASE_URL when set, else a throwaway PostgreSQL it starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages git curl

agents="${AGENTS:-10}"
rate="${RATE:-200}"
duration="${DURATION:-30}"
bench_setup events
seed_bare_remote "$work/remote.git" "# bench events" >/dev/null
heartbeat=$(awk -v r="$rate" 'BEGIN { printf "%.6f", 1 / r }')
cat >"$work/config.yaml" <<YAML
repos:
  - project: EVT
    plane_project_id: 33333333-4444-4555-8666-000000000001
    repo: bench/events
    clone_url: $work/remote.git
    test_command: ["true"]
agents:
  default:
    command: ["$python", "$PWD/examples/agent/agent.py", "--stream", "--sleep", "$duration", "--heartbeat", "$heartbeat"]
    timeout: 10m
YAML
port="$(free_port)"
base="http://127.0.0.1:$port"
ORCH_CONFIG="$work/config.yaml" ORCH_WORKDIR="$work/work" ORCH_PLANE_WEBHOOK_SECRET=bench ORCH_ADMIN_TOKEN=bench \
  ORCH_PORT="$port" ORCH_HOST=127.0.0.1 ORCH_LOG_LEVEL=warning ORCH_MAX_CONCURRENCY="$agents" \
  "$bin" serve --no-migrate >"$work/replica.log" 2>&1 &
replica=$!
pids+=("$replica")
wait_ready "$base/health/ready" "$work/replica.log"
cpu() { awk '{ print $14 + $15 }' "/proc/$replica/stat"; }
ticks="$(getconf CLK_TCK)"

echo "== $agents agents printing ~$rate stream-json events/s for ${duration}s on one replica, one SSE follower per run"
cpu_before="$(cpu)"
"$python" - "$agents" "$base" <<'PY' >"$work/lags.txt"
import hashlib, hmac, json, sys, threading, time, urllib.request
count, base = int(sys.argv[1]), sys.argv[2]
auth = {"Authorization": "Bearer bench"}
for n in range(1, count + 1):
    body = json.dumps({"event": "issue", "action": "created", "data": {
        "id": f"evt-{n}", "sequence_id": n, "project": "33333333-4444-4555-8666-000000000001",
        "name": f"Events {n}", "labels": [{"name": "auto"}]}}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{base}/webhook/plane", data=body, method="POST", headers={
        "Content-Type": "application/json",
        "X-Plane-Signature": hmac.new(b"bench", body, hashlib.sha256).hexdigest()}), timeout=10).read()

lags, lock = [], threading.Lock()
def follow(n):
    run = None
    while run is None:  # the task's first agent run, once it exists
        try:
            task = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/tasks/EVT-{n}", headers=auth)))
            run = task["agent_runs"][0]["id"] if task.get("agent_runs") else None
        except Exception:
            pass
        time.sleep(0.05)
    stream = urllib.request.urlopen(urllib.request.Request(
        f"{base}/tasks/EVT-{n}/runs/{run}/events/stream", headers=auth), timeout=600)
    mine = []
    for raw in stream:
        line = raw.decode()
        if line.startswith("event: end"):
            break
        if line.startswith("data: "):
            data = json.loads(line[6:]).get("data")
            if isinstance(data, dict) and "ts" in data:
                mine.append(time.time() - data["ts"])
    with lock:
        lags.extend(mine)
threads = [threading.Thread(target=follow, args=(n,)) for n in range(1, count + 1)]
for t in threads: t.start()
for t in threads: t.join()
for lag in lags: print(f"{lag:.6f}")
PY
cpu_after="$(cpu)"
q() { psql -X -A -t -q -c "$1"; }
printed=$(cat "$work"/work/logs/*analysis*.log | grep -c '"ts":' || true)
stored="$(q "SELECT count(*) FROM agent_run_events e JOIN agent_runs r ON r.id = e.run_id WHERE r.stage = 'analysis' AND e.data ? 'ts'")"
all_events="$(q "SELECT count(*) FROM agent_run_events")"
sort -n "$work/lags.txt" >"$work/lags.sorted"
n=$(wc -l <"$work/lags.sorted")
pct() { awk -v p="$1" -v n="$n" 'NR == int((n - 1) * p) + 1 { printf "%.0f", $1 * 1000 }' "$work/lags.sorted"; }
echo "events.printed: $printed events"
echo "events.stored: $stored events"
echo "events.followed: $n events"
echo "events.follower_lag_p50: $(pct 0.50) ms"
echo "events.follower_lag_p99: $(pct 0.99) ms"
echo "events.follower_lag_max: $(pct 1.0) ms"
awk -v b="$cpu_before" -v a="$cpu_after" -v t="$ticks" -v e="$all_events" \
  'BEGIN { printf "events.replica_cpu_per_1000: %.1f ms (%.1f s of CPU for %d events stored)\n", (a - b) / t * 1000 / (e / 1000), (a - b) / t, e }'
[ "$printed" = "$stored" ] || { echo "events.lost: $((printed - stored))" >&2; exit 1; }
