#!/usr/bin/env bash
# Every benchmark in one run, on one throwaway PostgreSQL, printed as `name: value unit` lines:
#   1. ../shared/bench/pg-limits.sh — the raw limits of this machine's PostgreSQL;
#   2. the queue: drain (20,000 jobs, 5 workers × batch 10; inline and leased jobs, median of 3)
#      and enqueue→claim latency at a steady 500 jobs/s (`orchestrator bench queue`), with the
#      drains' ratios to the raw limits;
#   3. webhook ingest through the load balancer (scripts/fleet.sh: HAProxy, deploy/haproxy.cfg)
#      with 1 and then 3 replicas, with the ratio to raw.insert_1row;
#   4. per-stage overhead and the serial gate's hand-over (scripts/bench-pipeline.sh);
#   5. failover, kill → the killed replica's jobs running elsewhere (scripts/chaos.sh --short), and
#      the merge lease's hand-over after its holder is SIGKILLed (an integration test's figure);
#   6. idle CPU and RSS per replica (a fleet of 3 left idle).
# The full output of each part goes to $BENCH_LOG_DIR (default a temporary folder, printed).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages wrk curl haproxy

logs="${BENCH_LOG_DIR:-$(mktemp -d /tmp/orch-bench.XXXXXX)}"
mkdir -p "$logs"
export ORCH_FLEET_DIR="$logs/fleet"
source scripts/lib/fleet.sh
cleanup() {
  fleet_stop 2>/dev/null || true
  throwaway_pg_stop
}
trap cleanup EXIT
bench_database_and_binary
export ORCH_BINARY="$PWD/$bin"
figure() { printf '%s: %s %s\n' "$1" "$2" "$3"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
log "logs of every part in $logs"

# 1. The raw limits.
limits="../shared/bench/pg-limits.sh"
[ -f "$limits" ] || { log "$limits not found (the shared folder beside the project)"; exit 1; }
bash "$limits" 5 15 | tee "$logs/pg-limits.txt" | sed 's/^/  /' >&2
raw_insert="$(awk '/^raw.insert_1row:/ {print $2}' "$logs/pg-limits.txt")"
raw_2tx="$(awk '/^raw.claim_then_done_2tx:/ {print $2}' "$logs/pg-limits.txt")"
raw_1tx="$(awk '/^raw.claim_done_1tx:/ {print $2}' "$logs/pg-limits.txt")"
figure raw.insert_1row "$raw_insert" rows/s
figure raw.claim_then_done_2tx "$raw_2tx" jobs/s
figure raw.claim_done_1tx "${raw_1tx:-n/a}" jobs/s
# pg-limits.sh's claim_done_1tx multiplies transactions by 10, also once its 300,000 prefilled
# rows ran out (fast machines drain them before its 15 s end, then count empty claims): the same
# statement again, 5 clients for 5 s on 1,000,000 rows, counting the rows it really marked done.
psql -X -q -v ON_ERROR_STOP=1 \
  -c "DROP TABLE IF EXISTS bench_claim1" \
  -c "CREATE TABLE bench_claim1 (id bigserial PRIMARY KEY, status text, payload jsonb, locked_by text, run_at timestamptz DEFAULT now(), attempts int DEFAULT 0)" \
  -c "CREATE INDEX ON bench_claim1 (run_at, id) WHERE status = 'queued'" \
  -c "INSERT INTO bench_claim1 (status, payload) SELECT 'queued', '{}'::jsonb FROM generate_series(1, 1000000)" \
  -c "VACUUM ANALYZE bench_claim1" -c "CHECKPOINT" >/dev/null
cat >"$logs/claim1.sql" <<'SQL'
WITH c AS (SELECT id FROM bench_claim1 WHERE status = 'queued' AND run_at <= now() ORDER BY run_at, id LIMIT 10 FOR UPDATE SKIP LOCKED) UPDATE bench_claim1 j SET status = 'done', attempts = j.attempts + 1 FROM c WHERE j.id = c.id;
SQL
pgbench -n -M prepared -c 5 -j 1 -T 5 -f "$logs/claim1.sql" >"$logs/claim1.txt" 2>&1
done_rows="$(psql -X -A -t -c "SELECT count(*) FROM bench_claim1 WHERE status = 'done'")"
psql -X -q -c "DROP TABLE bench_claim1" >/dev/null
raw_1tx_rows=$((done_rows / 5))
figure raw.claim_done_1tx_counted "$raw_1tx_rows" jobs/s

# 2. The queue: inline no-op jobs (one write each: the queue's ceiling) and leased ones (claimed,
# then completed: the pipeline's path), alternated three times; the median of each. A 20,000-job
# drain lasts under a second here, so one run alone says little.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for run in 1 2 3; do
  "$bin" bench queue --jobs 20000 --workers 5 --batch 10 >"$logs/queue-drain-$run.txt"
  "$bin" bench queue --jobs 20000 --workers 5 --batch 10 --leased >"$logs/queue-drain-leased-$run.txt"
done
drain="$(cat "$logs"/queue-drain-[0-9].txt | awk '/^drained/ {print $4}' | median)"
drain_leased="$(cat "$logs"/queue-drain-leased-[0-9].txt | awk '/^drained/ {print $4}' | median)"
figure queue.drain "$drain" jobs/s
figure queue.drain_over_raw.claim_then_done_2tx "$(ratio "$drain" "$raw_2tx")" x
figure queue.drain_over_raw.claim_done_1tx "$(ratio "$drain" "${raw_1tx:-0}")" x
figure queue.drain_over_raw.claim_done_1tx_counted "$(ratio "$drain" "$raw_1tx_rows")" x
figure queue.drain_leased "$drain_leased" jobs/s
figure queue.drain_leased_over_raw.claim_done_1tx "$(ratio "$drain_leased" "${raw_1tx:-0}")" x
figure queue.drain_leased_over_raw.claim_done_1tx_counted "$(ratio "$drain_leased" "$raw_1tx_rows")" x
"$bin" bench queue --duration 20 --workers 5 --batch 10 --rate 500 >"$logs/queue-steady.txt"
latency="$(grep 'enqueue→claim latency' "$logs/queue-steady.txt")"
figure queue.enqueue_to_claim_p50 "$(sed -E 's/.*p50 ([0-9.]+).*/\1/' <<<"$latency")" ms
figure queue.enqueue_to_claim_p99 "$(sed -E 's/.*p99 ([0-9.]+).*/\1/' <<<"$latency")" ms

# 3. Webhook ingest through the load balancer, 1 and 3 replicas.
secret="bench-secret"
bodies() { # bodies FILE: 300,000 signed Plane webhook bodies no earlier run sent (a body seen
  # before is a duplicate and not stored again)
  python3 - "$1" "$secret" <<'PY'
import hashlib, hmac, json, sys, uuid
path, secret = sys.argv[1], sys.argv[2].encode()
prefix = uuid.uuid4().hex[:8]
with open(path, "w") as out:
    for i in range(300000):
        body = json.dumps({"event": "issue", "action": "created", "data": {
            "id": f"{prefix}-{i}", "sequence_id": i, "project": "bench-project", "name": f"bench {i}",
            "labels": [], "description_stripped": "load test"}})
        out.write(hmac.new(secret, body.encode(), hashlib.sha256).hexdigest() + "\t" + body + "\n")
PY
}
rows() { psql -X -A -t -c "SELECT count(*) FROM webhook_deliveries"; }
ingest() { # ingest REPLICAS: accepted deliveries/s through the balancer over 15 s
  local count="$1" before after lb_port
  lb_port="$(free_port)"
  # API replicas, as in scripts/bench-webhooks.sh: the deliveries' processing is not measured.
  ORCH_LB_PORT="$lb_port" ORCH_FLEET_BASE_PORT="$(free_port 9)" ORCH_PLANE_WEBHOOK_SECRET="$secret" \
    ORCH_FLEET_SERVE_ARGS="--role api" ORCH_LOG_LEVEL=warning fleet_start "$count" >"$logs/fleet-$count.txt" 2>&1
  bodies "$logs/bodies-$count.txt"
  psql -X -q -c "CHECKPOINT" >/dev/null
  before="$(rows)"
  wrk -t2 -c32 -d15s --latency -s scripts/bench/webhooks.lua "http://127.0.0.1:$lb_port" -- "$logs/bodies-$count.txt" 2 0 \
    >"$logs/wrk-$count.txt" 2>&1
  after="$(rows)"
  fleet_stop
  echo $(( (after - before) / 15 ))
}
one="$(ingest 1)"
figure webhooks.ingest_lb_1_replica "$one" deliveries/s
figure webhooks.ingest_lb_1_replica_over_raw.insert_1row "$(ratio "$one" "$raw_insert")" x
three="$(ingest 3)"
figure webhooks.ingest_lb_3_replicas "$three" deliveries/s
figure webhooks.ingest_lb_3_replicas_over_raw.insert_1row "$(ratio "$three" "$raw_insert")" x

# 4. The pipeline: per-stage overhead and the serial gate's hand-over.
ORCH_DATABASE_URL="$ORCH_DATABASE_URL" bash scripts/bench-pipeline.sh >"$logs/pipeline.txt" 2>&1
pipeline_figure() { # pipeline_figure NAME PATTERN WHICH(p50|p99)
  local line
  line="$(grep -m1 -- "$2" "$logs/pipeline.txt" || true)"
  figure "$1" "$(sed -nE "s/.*$3 ([0-9.]+) ms.*/\1/p" <<<"$line" | head -1)" ms
}
pipeline_figure pipeline.claim_to_agent_start_p99 "claim → agent start" p99
pipeline_figure pipeline.agent_exit_to_next_job_p99 "agent exit → next job" p99
pipeline_figure pipeline.serial_gate_handover_p99 "previous task done" p99

# 5. Failover: the short chaos run measures kill → jobs running elsewhere.
ORCH_BINARY="$ORCH_BINARY" bash scripts/chaos.sh --short >"$logs/chaos.txt" 2>&1 || log "chaos reported a violation: $logs/chaos.txt"
failover="$(grep '^failover' "$logs/chaos.txt" || true)"
figure failover.kill_to_jobs_elsewhere_median "$(sed -nE 's/.*median ([0-9.]+) s.*/\1/p' <<<"$failover")" s
figure failover.kill_to_jobs_elsewhere_max "$(sed -nE 's/.*max ([0-9.]+) s.*/\1/p' <<<"$failover")" s

# 5b. Merge-lease hand-over: two real replicas and a Gitea stand-in; the holder is SIGKILLed
# mid-merge and the waiting merge takes the lease (the integration test that proves it prints
# what it measured). Needs the debug test build.
swift build --build-tests >"$logs/test-build.txt" 2>&1
ORCH_TEST_DATABASE_URL="$ORCH_DATABASE_URL" swift test --skip-build --disable-swift-testing \
  --filter 'GiteaMergeTests.testAReplicaKilledHoldingTheLeaseHandsItToTheWaitingMergeWithinASecond' \
  >"$logs/merge-lease.txt" 2>&1 || log "the merge-lease test failed: $logs/merge-lease.txt"
handover="$(sed -nE 's/.*hand-over after SIGKILL of its holder: ([0-9.]+) (seconds|s).*/\1/p' "$logs/merge-lease.txt" | head -1)"
figure merge_lease.handover_after_kill "${handover:-n/a}" s

# 6. Idle replicas.
idle="${IDLE_SECONDS:-30}"
ORCH_LB_PORT="$(free_port)" ORCH_FLEET_BASE_PORT="$(free_port 9)" ORCH_LOG_LEVEL=warning fleet_start 3 >"$logs/fleet-idle.txt" 2>&1
sleep 5
hz="$(getconf CLK_TCK)"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A start_ticks
for i in 1 2 3; do start_ticks[$i]="$(ticks "$(fleet_pid "replica$i")")"; done
sleep "$idle"
for i in 1 2 3; do
  pid="$(fleet_pid "replica$i")"
  used=$(( $(ticks "$pid") - ${start_ticks[$i]} ))
  figure "idle.replica$i.cpu" "$(awk -v d="$used" -v hz="$hz" -v s="$idle" 'BEGIN { printf "%.3f", 100 * d / hz / s }')" "% of a core"
  figure "idle.replica$i.rss" "$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")" MB
done
fleet_stop
