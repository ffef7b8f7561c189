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
ensure_packages
command -v wrk >/dev/null 2>&1 || { log "installing wrk"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  throwaway_pg_stop
  rm -rf "${work:-}"
}
trap cleanup EXIT
if [ -z "${ORCH_DATABASE_URL:-}" ]; then
  throwaway_pg_start
  export ORCH_DATABASE_URL="$THROWAWAY_URL"
fi
export_pg_env "$ORCH_DATABASE_URL"
