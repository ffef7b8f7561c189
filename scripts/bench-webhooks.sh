#!/usr/bin/env bash
# Webhook ingest benchmark: signed Plane webhooks with distinct bodies (wrk + scripts/bench/webhooks.lua)
# against one and then two `orchestrator serve --role api` replicas on the same database, right
# after ../shared/bench/pg-limits.sh's raw.insert_1row on the same server. Prints accepted
# deliveries/s (rows the replicas stored, counted in the database) and wrk's p50/p99 latency, at
# full load (CONNECTIONS, default 32) and at a light load (2 connections).
# Uses ORCH_DATABASE_URL when set, else a throwaway PostgreSQL it starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages wrk curl

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  throwaway_pg_stop
  rm -rf "${work:-}"
}
trap cleanup EXIT
bench_database_and_binary

work="$(mktemp -d /tmp/orch-bench-webhooks.XXXXXX)"
secret="bench-secret"
duration="${DURATION:-15}"
connections="${CONNECTIONS:-32}"

# One file of distinct signed bodies per run (the database remembers earlier bodies as duplicates).
make_bodies() {
  python3 - "$1" "$2" "$secret" <<'PY'
import hashlib, hmac, json, sys
path, prefix, secret = sys.argv[1], sys.argv[2], sys.argv[3].encode()
with open(path, "w") as out:
    for i in range(200000):
        body = json.dumps({"event": "issue", "action": "created", "data": {
            "id": f"{prefix}-{i}", "sequence_id": i, "project": "bench-project", "name": f"bench {prefix} {i}",
            "labels": [], "description_stripped": "load test"}})
        out.write(hmac.new(secret, body.encode(), hashlib.sha256).hexdigest() + "\t" + body + "\n")
PY
}

start_replica() {
  local port="$1"
  ORCH_PLANE_WEBHOOK_SECRET="$secret" ORCH_LOG_LEVEL=warning "$bin" serve --role api --host 127.0.0.1 --port "$port" --no-migrate \
    >"$work/replica-$port.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$port/health" "$work/replica-$port.log"
}

rows() { psql -X -A -t -c "SELECT count(*) FROM webhook_deliveries"; }

# run LABEL CONNECTIONS [rate=N] PORT...: wrk against each port at once (holding N requests/s per
# port when given), then accepted/s from the database.
run() {
  local label="$1" conns="$2" rate=0; shift 2
  case "${1:-}" in rate=*) rate="${1#rate=}"; shift ;; esac
  local before after
  # Start each run from a clean slate: a checkpoint left pending by the previous run would
  # otherwise land inside this one's measurement.
  psql -X -q -c "CHECKPOINT" >/dev/null
  before="$(rows)"
  for port in "$@"; do
    make_bodies "$work/bodies-$port.txt" "$label-$port-$RANDOM"
  done
  local loaders=()
  for port in "$@"; do
    wrk -t2 -c"$conns" -d"${duration}s" --latency -s scripts/bench/webhooks.lua "http://127.0.0.1:$port" -- "$work/bodies-$port.txt" 2 "$rate" \
      >"$work/wrk-$port.txt" 2>&1 &
    loaders+=($!)
  done
  wait "${loaders[@]}"
  after="$(rows)"
  echo "== $label: $# replica(s), $conns connections each, ${duration}s"
  for port in "$@"; do sed 's/^/  /' "$work/wrk-$port.txt" | grep -E "wrk:|latency"; done
  last_rate=$(( (after - before) / duration ))
  awk -v n=$((after - before)) -v s="$duration" 'BEGIN { printf "  accepted (stored) deliveries: %d = %.0f/s\n", n, n / s }'
}

limits="../shared/bench/pg-limits.sh"
if [ -f "$limits" ]; then
  echo "== ../shared/bench/pg-limits.sh 5 15"
  bash "$limits" 5 15 | grep insert_1row
fi
start_replica 18081
run "one replica, full load" "$connections" 18081
peak="$last_rate"
# Half the peak rate, held by wrk on a wall-clock schedule: the latency an operator sees at that load.
run "one replica, paced at half the peak rate ($((peak / 2))/s)" 16 "rate=$((peak / 2))" 18081
run "one replica, light load" 2 18081
start_replica 18082
run "two replicas, full load" $((connections / 2)) 18081 18082
