#!/usr/bin/env bash
# The chaos run: three replicas behind HAProxy (scripts/fleet.sh's fleet, loopback only) process a
# continuous stream of signed Plane webhooks and the pipeline tasks they create (the example agent,
# its analysis, architecture and development runs slowed down by a second) and a stream of inline
# diag jobs, while, over and over, one replica is SIGKILLed (and restarted once its
# jobs ran elsewhere), one is SIGSTOPped past the heartbeat TTL and resumed, PostgreSQL is
# restarted once, and some deliveries are sent twice at once, to two replicas. It stops by itself
# after DURATION seconds of chaos (default 240; `--short` = 45) plus the drain, then asserts and
# prints:
#   - every accepted delivery is stored once and processed (processed or ignored, none pending or
#     failed), and every work item created has exactly one task;
#   - every job finished or failed visibly: none running or queued once the tasks are done, and
#     every inline job completed, with its run recorded;
#   - every task ended done, walked each stage once per visit (no stage passed twice in a row),
#     and merged at most once (its merge commit once on the remote's main);
#   - no two merges of one repository overlapped (the successful merge jobs' run intervals);
#   - per kill, the time until the killed replica's jobs ran elsewhere.
# Exits non-zero on any violation. Needs nothing but this machine: scripts install what they use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

duration="${DURATION:-240}"
if [ "${1:-}" = "--short" ]; then duration="${DURATION:-45}"; fi
tasks_per_minute="${TASKS_PER_MINUTE:-16}"

ensure_packages git curl haproxy
work="$(mktemp -d /tmp/orch-chaos.XXXXXX)"
chmod 755 "$work"
export ORCH_FLEET_DIR="$work/fleet"
source scripts/lib/fleet.sh
sender=""
cleanup() {
  [ -n "$sender" ] && kill "$sender" 2>/dev/null || true
  fleet_stop
  [ -n "${KEEP:-}" ] && { log "kept $work"; return; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the fleet: its own PostgreSQL (restarted below), two repositories, the example agent --------
python="$(command -v /usr/bin/python3 || command -v python3)"
secret="chaos-secret"
token="chaos-token"
{
  echo "repos:"
  for r in 0 1; do
    seed_bare_remote "$work/remote-$r.git" "# chaos $r" >/dev/null
    cat <<YAML
  - project: CHAOS$r
    plane_project_id: 33333333-4444-4555-8666-00000000000$r
    repo: chaos/project-$r
    clone_url: $work/remote-$r.git
    default_branch: main
    test_command: ["true"]
YAML
  done
  cat <<YAML
agents:
  default: { command: ["$python", "$PWD/examples/agent/agent.py", "--sleep", "1"], timeout: 2m }
  reviewer: { command: ["$python", "$PWD/examples/agent/agent.py"], timeout: 2m }
YAML
} >"$work/config.yaml"
unset ORCH_DATABASE_URL
export ORCH_CONFIG="$work/config.yaml" ORCH_PLANE_WEBHOOK_SECRET="$secret" ORCH_ADMIN_TOKEN="$token"
export ORCH_HEARTBEAT_INTERVAL=1s ORCH_HEARTBEAT_TTL=3s ORCH_LOG_LEVEL="${ORCH_LOG_LEVEL:-info}"
# diag.inline: a stream of inline jobs (claimed, run and written in one transaction) beside the
# pipeline's leased ones, through the same kills, pauses and restart.
export ORCH_DIAGNOSTIC_JOBS=1
export ORCH_LB_PORT="${ORCH_LB_PORT:-$(free_port)}" ORCH_FLEET_BASE_PORT="$(free_port 9)"
ttl=3
fleet_start 3
export_pg_env "$(cat "$FLEET_DIR/database_url")"
lb="http://127.0.0.1:$ORCH_LB_PORT"
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
# psql through a Postgres restart: retried for a while.
qr() { local i; for i in $(seq 1 100); do q "$1" 2>/dev/null && return 0; sleep 0.2; done; q "$1"; }
log "chaos: 3 replicas behind $lb for ${duration}s (TTL ${ttl}s), work in $work"

# --- the stream of webhooks ---------------------------------------------------------------------
cat >"$work/sender.py" <<'PY'
import hashlib, hmac, json, random, sys, threading, time, urllib.request
lb, direct1, direct2, secret, duration, per_minute, log_path = sys.argv[1:8]
duration, per_minute = float(duration), float(per_minute)
secret = secret.encode()
accepted = open(log_path, "a", buffering=1)
def send(url, body, delivery):
    signature = hmac.new(secret, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url + "/webhook/plane", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Plane-Signature": signature, "X-Plane-Delivery": delivery})
    for attempt in range(40):  # a sender retries until accepted, as Plane does
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if 200 <= response.status < 300:
                    accepted.write(delivery + "\n")
                    return True
        except Exception:
            pass
        time.sleep(0.25)
    return False
def issue(n, action, stamp):
    return json.dumps({"event": "issue", "action": action, "webhook_id": "chaos", "workspace_id": "chaos",
        "data": {"id": f"chaos-issue-{n}", "sequence_id": n, "project": f"33333333-4444-4555-8666-00000000000{n % 2}",
                 "name": f"Chaos item {n}", "description_stripped": f"Change {n}", "labels": [{"name": "auto"}],
                 "state": {"name": "Todo"}, "updated_at": stamp}}).encode()
def stamp(now):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1e6) % 1000000:06d}Z"
start, n, deliveries = time.time(), 0, 0
next_task = start
while time.time() - start < duration:
    now = time.time()
    if now >= next_task:
        n += 1
        next_task += 60.0 / per_minute
        body, delivery = issue(n, "created", stamp(now)), f"created-{n}"
    elif n > 0:
        m = random.randint(1, n)
        body = issue(m, "updated", stamp(now))
        delivery = f"updated-{m}-{int(now * 1e6)}"
    else:
        time.sleep(0.05)
        continue
    deliveries += 1
    if deliveries % 5 == 0:  # the same delivery to two replicas at once
        threads = [threading.Thread(target=send, args=(url, body, delivery)) for url in (direct1, direct2)]
        for t in threads: t.start()
        for t in threads: t.join()
    else:
        send(lb, body, delivery)
    time.sleep(0.2)
print(n)
PY
port_of() { cat "$FLEET_DIR/replica$1.port"; }
"$python" "$work/sender.py" "$lb" "http://127.0.0.1:$(port_of 1)" "http://127.0.0.1:$(port_of 2)" "$secret" \
  "$duration" "$tasks_per_minute" "$work/accepted.txt" >"$work/sender.out" 2>&1 &
sender=$!

# --- the chaos ----------------------------------------------------------------------------------
replica_id() { qr "SELECT id FROM replicas WHERE name = 'replica$1' ORDER BY started_at DESC LIMIT 1"; }
failovers=()
kills=0
pauses=0
pg_restarted=0
chaos_end=$((SECONDS + duration))
round=0
while [ $SECONDS -lt $chaos_end ]; do
  round=$((round + 1))
  sleep 3
  # Inline jobs just before the kill, so the victim is likely holding a batch of them.
  qr "WITH i AS (INSERT INTO jobs (kind, payload) SELECT 'diag.inline', '{\"ms\": 300}' FROM generate_series(1, 40)
                 RETURNING 1) SELECT count(*), pg_notify('orch_jobs', 'default') FROM i" >/dev/null || true
  sleep 0.2
  # SIGKILL the replica running the most jobs (round robin when none runs any): its jobs must run
  # elsewhere; it comes back once they do.
  busiest="$(qr "SELECT r.name FROM jobs j JOIN replicas r ON r.id = j.locked_by
                 WHERE j.status = 'running' AND r.stopped_at IS NULL AND r.name LIKE 'replica_'
                 GROUP BY r.name ORDER BY count(*) DESC LIMIT 1")"
  victim="${busiest#replica}"
  [ -n "$victim" ] || victim=$(( (round % 3) + 1 ))
  id="$(replica_id "$victim")"
  running="$(qr "SELECT coalesce(string_agg(id::text, ','), '') FROM jobs WHERE status = 'running' AND locked_by = '$id'")"
  pid="$(fleet_pid "replica$victim" || true)"
  [ -n "$pid" ] || continue
  kill -KILL "$pid"
  killed_at=$(date +%s.%N)
  killed_db="$(qr "SELECT now()")"
  kills=$((kills + 1))
  if [ -n "$running" ]; then
    # Its jobs have run elsewhere once none is still the dead replica's, apart from any it
    # finished just before the kill (those moved nowhere and are not counted).
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
      left="$(qr "SELECT count(*) FROM jobs WHERE id IN ($running) AND locked_by = '$id'
                  AND NOT (status IN ('completed', 'failed', 'cancelled') AND finished_at <= '$killed_db')")"
      [ "$left" = "0" ] && break
      sleep 0.05
    done
    elapsed=$(awk -v s="$killed_at" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
    moved="$(qr "SELECT coalesce(string_agg(id::text, ','), '') FROM jobs WHERE id IN ($running) AND locked_by <> '$id'")"
    if [ -n "$moved" ]; then
      failovers+=("$elapsed")
      log "kill $kills: replica$victim (SIGKILL) held jobs $running; $moved ran elsewhere after ${elapsed}s"
    else
      log "kill $kills: replica$victim (SIGKILL) had just finished its jobs ($running)"
    fi
  else
    log "kill $kills: replica$victim (SIGKILL) held no job"
  fi
  fleet_start_replica "$victim"
  fleet_wait_ready "$victim" 60
  [ $SECONDS -lt $chaos_end ] || break
  # SIGSTOP past the TTL, then SIGCONT: it must notice and register again, abandoning what it held.
  paused=$(( ((round + 1) % 3) + 1 ))
  if pid="$(fleet_pid "replica$paused")"; then
    kill -STOP "$pid"
    pauses=$((pauses + 1))
    sleep $((ttl + 2))
    kill -CONT "$pid"
    log "pause $pauses: replica$paused SIGSTOPped for $((ttl + 2))s (TTL ${ttl}s), then resumed"
  fi
  # Once, half-way: PostgreSQL restarts under everyone.
  if [ $pg_restarted = 0 ] && [ $SECONDS -ge $((chaos_end - duration / 2)) ]; then
    bin="$(find_pg_bin)"
    as_pg_user "$bin/pg_ctl" -D "$FLEET_DIR/pgdata" -m fast -w restart >/dev/null
    pg_restarted=1
    log "PostgreSQL restarted"
  fi
done
wait "$sender" || true
sender=""
created="$(tail -n 1 "$work/sender.out")"
log "chaos over: $kills kills, $pauses pauses, PostgreSQL restarted $pg_restarted time(s), $created work items sent; draining"

# --- drain: every task to an end, the queue empty ------------------------------------------------
drain_deadline=$((SECONDS + ${DRAIN_SECONDS:-240}))
while [ $SECONDS -lt $drain_deadline ]; do
  open="$(qr "SELECT count(*) FROM tasks WHERE status NOT IN ('done', 'failed', 'cancelled')")"
  busy="$(qr "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND kind IN ('run_stage', 'process_webhook', 'diag.inline')")"
  pending="$(qr "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")"
  [ "$open" = "0" ] && [ "$busy" = "0" ] && [ "$pending" = "0" ] && break
  sleep 1
done

# --- assertions ---------------------------------------------------------------------------------
violations=0
check() { # check NAME VALUE EXPECTED
  if [ "$2" = "$3" ]; then echo "ok: $1 ($2)"; else echo "VIOLATION: $1: $2, expected $3"; violations=$((violations + 1)); fi
}
accepted="$(sort -u "$work/accepted.txt" | wc -l)"
stored="$(q "SELECT count(*) FROM webhook_deliveries WHERE source = 'plane'")"
check "accepted deliveries stored once each" "$stored" "$accepted"
sort -u "$work/accepted.txt" | sed "s/.*/'&'/" | paste -sd, >"$work/accepted.sql"
missing="$(q "SELECT count(*) FROM unnest(ARRAY[$(cat "$work/accepted.sql")]::text[]) AS d(id)
              WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.delivery_id = d.id)")"
check "accepted deliveries missing from the database" "$missing" "0"
check "deliveries not processed (pending or failed)" \
  "$(q "SELECT count(*) FROM webhook_deliveries WHERE status NOT IN ('processed', 'ignored')")" "0"
check "tasks, one per work item created" "$(q "SELECT count(*) FROM tasks")" "$created"
check "tasks not done" "$(q "SELECT count(*) FROM tasks WHERE status <> 'done'")" "0"
q "SELECT format('  not done: %s %s/%s: %s', t.work_item, t.stage, t.status,
          (SELECT e.reason FROM task_events e WHERE e.task_id = t.id ORDER BY e.id DESC LIMIT 1))
   FROM tasks t WHERE t.status <> 'done' ORDER BY t.id"
check "jobs still running" "$(q "SELECT count(*) FROM jobs WHERE status = 'running'")" "0"
check "pipeline jobs still queued" \
  "$(q "SELECT count(*) FROM jobs WHERE status = 'queued' AND kind IN ('run_stage', 'process_webhook')")" "0"
inline="$(q "SELECT count(*) FROM jobs WHERE kind = 'diag.inline'")"
check "inline jobs not completed (of $inline)" \
  "$(q "SELECT count(*) FROM jobs WHERE kind = 'diag.inline' AND status <> 'completed'")" "0"
check "inline jobs completed without a recorded run" "$(q "
  SELECT count(*) FROM jobs j WHERE j.kind = 'diag.inline' AND j.status = 'completed'
  AND NOT EXISTS (SELECT 1 FROM diag_executions e WHERE e.job_id = j.id)")" "0"
check "jobs failed without a visible error" \
  "$(q "SELECT count(*) FROM jobs WHERE status = 'failed' AND coalesce(last_error, '') = ''")" "0"
check "stages passed twice in a row (one visit applied twice)" "$(q "
  SELECT count(*) FROM (
    SELECT event, from_stage, lag(event) OVER w AS previous_event, lag(from_stage) OVER w AS previous_stage
    FROM task_events WINDOW w AS (PARTITION BY task_id ORDER BY id)) e
  WHERE event = 'stage_passed' AND previous_event = 'stage_passed' AND from_stage = previous_stage")" "0"
check "tasks merged more than once" "$(q "
  SELECT count(*) FROM (SELECT task_id FROM task_events WHERE event = 'stage_passed' AND from_stage = 'merge'
                        GROUP BY task_id HAVING count(*) > 1) m")" "0"
twice=0
for r in 0 1; do
  for item in $(q "SELECT work_item FROM tasks WHERE repo = 'chaos/project-$r'"); do
    n="$(git -C "$work/remote-$r.git" log --first-parent --format=%s main | grep -c -w -- "$item" || true)"
    [ "$n" -le 1 ] || twice=$((twice + 1))
  done
done
check "work items merged into main more than once" "$twice" "0"
check "overlapping merges of one repository" "$(q "
  WITH merges AS (
    SELECT j.id, t.repo, j.claimed_at, j.finished_at FROM jobs j JOIN tasks t ON t.work_item = j.payload->>'work_item'
    WHERE j.kind = 'run_stage' AND j.payload->>'stage' = 'merge' AND j.status = 'completed')
  SELECT count(*) FROM merges a JOIN merges b ON a.repo = b.repo AND a.id < b.id
  WHERE a.claimed_at < b.finished_at AND b.claimed_at < a.finished_at")" "0"
echo "kills: $kills  pauses: $pauses  postgres restarts: $pg_restarted  work items: $created  deliveries accepted: $accepted"
echo "inline jobs: $inline, runs recorded $(q "SELECT count(*) FROM diag_executions e JOIN jobs j ON j.id = e.job_id
  WHERE j.kind = 'diag.inline'") (a batch rolled back by a kill, pause or restart runs again)"
if [ ${#failovers[@]} -gt 0 ]; then
  printf '%s\n' "${failovers[@]}" | sort -n | awk '{ a[NR] = $1 } END {
    printf "failover (kill → its jobs running elsewhere): %d kills with jobs, min %.2f s, median %.2f s, max %.2f s\n",
      NR, a[1], a[int((NR + 1) / 2)], a[NR] }'
fi
if [ "$violations" -gt 0 ]; then
  echo "chaos: $violations violation(s); replica logs in $FLEET_DIR (KEEP=1 keeps them)"
  exit 1
fi
echo "chaos: no violation (${SECONDS}s in all)"
