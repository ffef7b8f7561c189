#!/usr/bin/env bash
# The main job, end to end on this machine, with no configuration:
#   - a local PostgreSQL (kept under .run/pgdata between runs, unless ORCH_DATABASE_URL is set);
#   - a local bare git repository as the remote (.run/demo/remote.git; no Gitea: the merge stage
#     merges and pushes with git itself);
#   - two `orchestrator serve` replicas on one database (ports 8080 and 8081 unless taken), the
#     example agent (examples/agent/agent.py) as every stage's agent;
#   - a signed Plane webhook creating work item DEMO-<n> with the `auto` label, sent to the first
#     replica; the task then walks analysis → architecture → development → review → merge → deploy
#     → done, each transition printed with the replica and agent cost, then where to look.
# The replicas keep running afterwards (Ctrl-C stops everything); RUN_ONCE=1 exits when the task
# ends. With arguments, runs a single `orchestrator serve <arguments>` instead (the plain service).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_packages git curl

run_dir="${ORCH_RUN_DIR:-$PWD/.run}"
mkdir -p "$run_dir"
chmod 755 "$run_dir"
started=""
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$started" ]; then pg_stop "$run_dir/pgdata"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${ORCH_DATABASE_URL:-}" ]; then
  port="${ORCH_RUN_PG_PORT:-55432}"
  pg_start "$run_dir/pgdata" "$port"
  started=1
  export ORCH_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
fi

swift build --product orchestrator
binary="$(swift build --show-bin-path)/orchestrator"

if [ $# -gt 0 ]; then
  log "starting: orchestrator serve $* (database $ORCH_DATABASE_URL)"
  "$binary" serve "$@" &
  pids+=($!)
  wait "${pids[0]}"
  exit $?
fi

# --- the demo ---------------------------------------------------------------------------------
demo="$run_dir/demo"
secret="demo-webhook-secret"
token="demo-admin-token"
mkdir -p "$demo"
# Earlier versions of pg_start handed everything beside the database to the postgres user; take
# the demo back so git accepts its clones.
[ "$(id -u)" -eq 0 ] && chown -R "$(id -u):$(id -g)" "$demo"
remote="$demo/remote.git"
if [ ! -d "$remote" ]; then
  log "creating the demo remote $remote"
  seed_bare_remote "$remote" "$(printf '# Demo project\n\nChanged only by the orchestrator demo.')"
fi
python="$(command -v /usr/bin/python3 || command -v python3)"
cat >"$demo/orchestrator.yaml" <<EOF
repos:
  - project: DEMO
    plane_project_id: 11111111-2222-4333-8444-555555555555
    repo: demo/project
    clone_url: $remote
    default_branch: main
    test_command: ["ls", "tests"]
agents:
  default: { command: ["$python", "$PWD/examples/agent/agent.py"], timeout: 2m }
  reviewer: { command: ["$python", "$PWD/examples/agent/agent.py"], timeout: 2m }
EOF

"$binary" migrate >"$demo/migrate.log" 2>&1 || { cat "$demo/migrate.log"; exit 1; }
ports=()
for name in a b; do
  case "$name" in a) want=8080 ;; b) want=8081 ;; esac
  if (exec 3<>"/dev/tcp/127.0.0.1/$want") 2>/dev/null; then want="$(free_port)"; fi
  ports+=("$want")
  ORCH_REPLICA_NAME="demo-$name" ORCH_PORT="$want" ORCH_HOST=127.0.0.1 ORCH_CONFIG="$demo/orchestrator.yaml" \
    ORCH_WORKDIR="$demo/work-$name" ORCH_PLANE_WEBHOOK_SECRET="$secret" ORCH_ADMIN_TOKEN="$token" \
    ORCH_PROMPTS_DIR="$PWD/prompts" ORCH_LOG_LEVEL="${ORCH_LOG_LEVEL:-info}" \
    "$binary" serve --no-migrate >"$demo/replica-$name.log" 2>&1 &
  pids+=($!)
done
for i in "${!ports[@]}"; do
  name=$([ "$i" -eq 0 ] && echo a || echo b)
  wait_ready "http://127.0.0.1:${ports[$i]}/health/ready" "$demo/replica-$name.log"
done
log "replicas ready: http://127.0.0.1:${ports[0]} and http://127.0.0.1:${ports[1]} (logs in $demo/replica-*.log)"

sequence=$(( $(date +%s) % 100000 ))
work_item="DEMO-$sequence"
signature="$(python3 - "$sequence" "$secret" "$demo/webhook.json" <<'PY'
import hashlib, hmac, json, sys
n, secret, path = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
body = json.dumps({"event": "issue", "action": "created", "webhook_id": "demo", "workspace_id": "demo",
                   "data": {"id": f"demo-issue-{n}", "sequence_id": n, "project": "11111111-2222-4333-8444-555555555555",
                            "name": "Greet the user by name on the start page",
                            "description_stripped": "The start page says 'Hello'. It should say 'Hello, <name>' for a signed-in user.",
                            "labels": [{"name": "auto"}], "state": {"name": "Todo"}}}).encode()
open(path, "wb").write(body)
print(hmac.new(secret, body, hashlib.sha256).hexdigest())
PY
)"
log "sending a signed Plane webhook for $work_item to replica a"
curl -fsS -X POST "http://127.0.0.1:${ports[0]}/webhook/plane" -H 'Content-Type: application/json' \
  -H "X-Plane-Signature: $signature" --data-binary "@$demo/webhook.json"
echo

# Follow the task: print each transition (with the replica that ran the stage) until it ends.
outcome=0
python3 - "http://127.0.0.1:${ports[1]}" "$token" "$work_item" <<'PY' || outcome=1
import json, sys, time, urllib.request
base, token, work_item = sys.argv[1:4]
def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except Exception:
        return None
seen, deadline = 0, time.time() + 300
while time.time() < deadline:
    detail = get("/tasks/" + work_item)
    if detail:
        for event in detail["history"][seen:]:
            runs = [r for r in detail["agent_runs"] if r["stage"] == event["from_stage"]]
            who = f" on {runs[-1]['replica']}, agent cost ${runs[-1]['cost_usd']}" if runs and event["event"] != "approved" else ""
            print(f"  {event['from_stage']:>12} → {event['to_stage']:<12} {event['to_status']:<18} {event['event']}: {(event['reason'] or '')[:70]}{who}", flush=True)
        seen = len(detail["history"])
        status = detail["task"]["status"]
        if status in ("done", "failed", "cancelled"):
            print(f"\n{work_item} is {status}: {len(detail['agent_runs'])} agent runs, total cost ${detail['cost_usd']}")
            sys.exit(0 if status == "done" else 1)
    time.sleep(0.3)
print(f"{work_item} did not finish in time")
sys.exit(1)
PY

cat <<EOF

Where to look:
  curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:${ports[0]}/tasks/$work_item | python3 -m json.tool
  curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:${ports[0]}/queue | python3 -m json.tool
  curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:${ports[0]}/metrics | python3 -m json.tool
  git -C $remote log --oneline --graph main        # the merged work
  ls $demo/work-*/logs/                             # one log per agent run
  less $demo/replica-a.log $demo/replica-b.log      # the replicas' structured logs
  psql $ORCH_DATABASE_URL -c 'SELECT * FROM task_events ORDER BY id DESC LIMIT 10'
EOF

if [ "${RUN_ONCE:-0}" = "1" ]; then exit "$outcome"; fi
log "the replicas keep running; Ctrl-C stops them and PostgreSQL"
wait "${pids[0]}"
