#!/usr/bin/env bash
# Queue benchmark, figures printed: this machine's PostgreSQL ceiling (../shared/bench/pg-limits.sh)
# and, right after on the same server, `orchestrator bench queue` in drain and steady modes, then
# an idle replica's CPU and memory over IDLE_SECONDS (default 60).
# Uses ORCH_DATABASE_URL when set, else a throwaway PostgreSQL it starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages

trap throwaway_pg_stop EXIT
bench_database_and_binary

limits="../shared/bench/pg-limits.sh"
raw=""
if [ -f "$limits" ]; then
  echo "== ../shared/bench/pg-limits.sh 5 15"
  bash "$limits" 5 15 | tee /tmp/orch-pg-limits.txt
  raw="$(awk '/raw.claim_then_done_2tx/ {print $2}' /tmp/orch-pg-limits.txt)"
fi
runs="${DRAIN_RUNS:-3}"
rates=()
for i in $(seq 1 "$runs"); do
  echo "== orchestrator bench queue --jobs 20000 --workers 5 --batch 10   (run $i of $runs)"
  out="$("$bin" bench queue --jobs 20000 --workers 5 --batch 10)"
  echo "$out"
  rates+=("$(awk '/^drained/ {print $4}' <<<"$out")")
done
median="$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
echo "drain median of $runs runs: $median jobs/s"
if [ -n "$raw" ]; then
  awk -v m="$median" -v r="$raw" 'BEGIN { printf "drain / raw.claim_then_done_2tx: %.0f%%\n", 100 * m / r }'
fi
echo "== orchestrator bench queue --duration 20 --workers 5 --batch 10 --rate ${RATE:-500}"
"$bin" bench queue --duration 20 --workers 5 --batch 10 --rate "${RATE:-500}"

idle="${IDLE_SECONDS:-60}"
echo "== idle replica over ${idle}s"
ORCH_PORT="$(free_port)" "$bin" serve >/tmp/orch-idle.log 2>&1 &
pid=$!
sleep 5
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=$(ticks $pid); sleep "$idle"; t1=$(ticks $pid)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
kill -TERM $pid; wait $pid || true
awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$idle" -v rss="$rss" \
  'BEGIN { printf "idle replica: CPU %.2f s over %d s (%.3f%%), RSS %.1f MB\n", d/hz, s, 100*d/hz/s, rss/1024 }'
