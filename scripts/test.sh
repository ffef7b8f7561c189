#!/usr/bin/env bash
# The test command: checks the formatting, installs what is missing, starts a throwaway PostgreSQL
# (unless ORCH_TEST_DATABASE_URL names one, as a postgresql:// URI), builds, runs `swift test`,
# stops what it started, and exits non-zero on any failure. Extra arguments go to `swift test`;
# `--unit` first runs only the unit tests, without a database. A full run ends with the short
# chaos run (scripts/chaos.sh --short).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

# `--unit`: only the pure unit tests (no database, no servers), in seconds.
unit=0
if [ "${1:-}" = "--unit" ]; then
  unit=1
  shift
fi

# Style: the code is formatted as .swift-format says (line length 120); any finding fails the run.
log "lint: swift format lint --strict"
swift format lint --strict --recursive Sources Tests Package.swift

if [ "$unit" = 1 ]; then
  swift build --build-tests
  exec swift test --skip-build --disable-swift-testing --filter '^UnitTests\.' "$@"
fi

# git: the pipeline and launcher tests drive real repositories; haproxy and docker-compose: the
# packaging tests check deploy/haproxy.cfg and docker-compose.yml with them (no engine needed);
# curl: the live-output test follows a run's Server-Sent Events with it.
ensure_packages git haproxy docker-compose curl

trap throwaway_pg_stop EXIT
if [ -z "${ORCH_TEST_DATABASE_URL:-}" ]; then
  throwaway_pg_start
  export ORCH_TEST_DATABASE_URL="$THROWAWAY_URL"
  # Lets the restart tests bounce this server (they skip against a server they do not own).
  export ORCH_TEST_PG_DATA="$THROWAWAY_DIR/data"
fi
log "tests use $ORCH_TEST_DATABASE_URL"

# Multi-replica tests start the real binary; build it (and the tests) first.
swift build --build-tests
# The suites are XCTest; Swift Testing would only add a closing "0 tests" line.
log_file="$(mktemp /tmp/orch-test-log.XXXXXX)"
set +e
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log_file"
status=${PIPESTATUS[0]}
set -e
summary="$(grep -aE 'Executed [0-9]+ tests?, with ' "$log_file" | tail -1)"
rm -f "$log_file"
if [ -n "$summary" ]; then
  total="$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")"
  failed="$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$summary")"
  skipped="$(grep -oE '[0-9]+ tests? skipped' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)"
  echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
fi
# The short chaos run (about a minute: three real replicas behind HAProxy, kills, pauses and a
# PostgreSQL restart under a stream of webhooks and tasks; scripts/chaos.sh), after the whole
# suite only: a filtered run (`--filter …`) skips it, and CHAOS=0 does too.
if [ $# -eq 0 ] && [ "${CHAOS:-1}" != 0 ]; then
  log "chaos: scripts/chaos.sh --short"
  chaos_status=0
  ORCH_BINARY="$(swift build --show-bin-path)/orchestrator" bash scripts/chaos.sh --short || chaos_status=$?
  [ "$status" -ne 0 ] || status=$chaos_status
fi
exit "$status"
