#!/usr/bin/env bash
# pg-restart.sh DATA_DIR: restarts (fast mode) the throwaway server started by pg_start, for the
# database-restart tests. scripts/test.sh exports ORCH_TEST_PG_DATA when it owns the server.
set -euo pipefail
source "$(dirname "$0")/common.sh"
data="$1"
bin="$(find_pg_bin)"
as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w -t 60 restart -l "$data/server.log" >/dev/null
