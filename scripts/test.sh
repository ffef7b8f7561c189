#!/usr/bin/env bash
# The test command: installs what is missing, starts a throwaway PostgreSQL (unless
# ORCH_TEST_DATABASE_URL names one, as a postgresql:// URI), builds, runs `swift test`, stops
# what it started, and exits non-zero on any failure. Extra arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_packages

started_dir=""
cleanup() {
  if [ -n "$started_dir" ]; then
    pg_stop "$started_dir/data"
    rm -rf "$started_dir"
  fi
}
trap cleanup EXIT

if [ -z "${ORCH_TEST_DATABASE_URL:-}" ]; then
  started_dir="$(mktemp -d /tmp/orch-test-pg.XXXXXX)"
  chmod 755 "$started_dir"
  port="$(free_port)"
  pg_start "$started_dir/data" "$port"
  export ORCH_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
  # Lets the restart tests bounce this server (they skip against a server they do not own).
  export ORCH_TEST_PG_DATA="$started_dir/data"
fi
log "tests use $ORCH_TEST_DATABASE_URL"

# Multi-replica tests start the real binary; build it (and the tests) first.
swift build --build-tests
swift test --skip-build "$@"
