#!/usr/bin/env bash
# A local fleet without Docker: N replicas on one machine against one PostgreSQL, behind HAProxy.
#
#   scripts/fleet.sh start [N]   N replicas (1-9, default 3); prints the one URL to use
#   scripts/fleet.sh status      one line per replica: pid=N, its port and health; then the balancer
#   scripts/fleet.sh stop        stops everything `start` started
#
# The replicas take their configuration from this environment (ORCH_ADMIN_TOKEN, the webhook
# secrets, ORCH_CONFIG, …; see the README). Without ORCH_DATABASE_URL the fleet runs a PostgreSQL
# of its own under .run/fleet/pgdata. ORCH_LB_PORT (default 8080) is the balancer's port, the
# replicas listen on the ports after it (ORCH_FLEET_BASE_PORT). ORCH_BINARY runs a given binary
# instead of a debug build. State and logs: ORCH_FLEET_DIR (default .run/fleet).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
source scripts/lib/fleet.sh

command="${1:-}"
case "$command" in
  start)
    ensure_packages git curl haproxy
    count="${2:-3}"
    if ! fleet_start "$count"; then
      log "the fleet did not start; stopping what did"
      fleet_stop
      exit 1
    fi
    fleet_status || true
    echo "fleet: $count replicas behind http://127.0.0.1:$(cat "$FLEET_DIR/haproxy.port") (webhooks: /webhook/plane, /webhook/gitea; admin: /queue, /status, …)"
    ;;
  status)
    fleet_status
    ;;
  stop)
    fleet_stop
    echo "fleet stopped"
    ;;
  *)
    echo "usage: scripts/fleet.sh start [N] | status | stop" >&2
    exit 2
    ;;
esac
