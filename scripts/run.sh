#!/usr/bin/env bash
# The main job: starts a local PostgreSQL (kept under .run/pgdata between runs, unless
# ORCH_DATABASE_URL is set), builds the orchestrator and runs `orchestrator serve` against it.
# Extra arguments go to `serve` (e.g. --port 9090 --role worker). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_packages

run_dir="${ORCH_RUN_DIR:-$PWD/.run}"
started=""
cleanup() { [ -n "$started" ] && pg_stop "$run_dir/pgdata"; }
trap cleanup EXIT

if [ -z "${ORCH_DATABASE_URL:-}" ]; then
  port="${ORCH_RUN_PG_PORT:-55432}"
  mkdir -p "$run_dir"
  chmod 755 "$run_dir"
  pg_start "$run_dir/pgdata" "$port"
  started=1
  export ORCH_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
fi

swift build --product orchestrator
binary="$(swift build --show-bin-path)/orchestrator"
log "starting: orchestrator serve $* (database $ORCH_DATABASE_URL)"
"$binary" serve "$@" &
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; cleanup' INT TERM
wait $child
