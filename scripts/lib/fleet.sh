# A local fleet: N `orchestrator serve` replicas on 127.0.0.1 against one PostgreSQL, with HAProxy
# (deploy/haproxy.cfg, the file docker-compose.yml uses too) in front. Sourced by scripts/fleet.sh
# and scripts/chaos.sh, after scripts/lib/common.sh. Everything it starts is recorded under
# $FLEET_DIR (pid and port files), so `fleet_stop` stops exactly that and nothing else.

FLEET_DIR="${ORCH_FLEET_DIR:-$PWD/.run/fleet}"

# fleet_binary: the orchestrator binary to run: ORCH_BINARY, else a debug build.
fleet_binary() {
  if [ -n "${ORCH_BINARY:-}" ]; then
    FLEET_BINARY="$ORCH_BINARY"
  else
    swift build --product orchestrator >&2
    FLEET_BINARY="$(swift build --show-bin-path)/orchestrator"
  fi
  echo "$FLEET_BINARY" >"$FLEET_DIR/binary"
}

# fleet_pid NAME: the recorded pid of NAME if that process is alive (a zombie, killed but not
# yet reaped by whoever adopted it, is not), else nothing.
fleet_pid() {
  local file="$FLEET_DIR/$1.pid" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(ps -o state= -p "$pid" 2>/dev/null | tr -d ' ')" != "Z" ] || return 1
  echo "$pid"
}

# fleet_database: ORCH_DATABASE_URL, else a PostgreSQL of the fleet's own under $FLEET_DIR/pgdata.
fleet_database() {
  if [ -n "${ORCH_DATABASE_URL:-}" ]; then
    echo "$ORCH_DATABASE_URL" >"$FLEET_DIR/database_url"
    return 0
  fi
  local port="${ORCH_FLEET_PG_PORT:-}"
  if [ -z "$port" ]; then
    # Not one of the ports fleet_start has already given the balancer and the replicas.
    port="$(free_port)"
    while grep -qx "$port" "$FLEET_DIR"/*.port 2>/dev/null; do port="$(free_port)"; done
  fi
  pg_start "$FLEET_DIR/pgdata" "$port"
  echo "$port" >"$FLEET_DIR/pg.port"
  echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$FLEET_DIR/database_url"
}

# fleet_start_replica I: starts replica I (1-based) on the port recorded for it, in the
# background, in a session of its own (so a signal to it reaches no one else).
# ORCH_FLEET_SERVE_ARGS are added to `serve` (e.g. `--role api` for an ingest benchmark).
fleet_start_replica() {
  local index="$1" port
  port="$(cat "$FLEET_DIR/replica$index.port")"
  mkdir -p "$FLEET_DIR/work$index"
  ORCH_DATABASE_URL="$(cat "$FLEET_DIR/database_url")" ORCH_PORT="$port" ORCH_HOST=127.0.0.1 \
    ORCH_REPLICA_NAME="replica$index" ORCH_WORKDIR="$FLEET_DIR/work$index" \
    setsid "$(cat "$FLEET_DIR/binary")" serve ${ORCH_FLEET_SERVE_ARGS:-} >>"$FLEET_DIR/replica$index.log" 2>&1 </dev/null &
  echo $! >"$FLEET_DIR/replica$index.pid"
  # Not this shell's job any more: a kill of it (chaos.sh) is not reported as "Killed".
  disown $!
}

# fleet_wait_ready I [SECONDS]: waits until replica I answers /health/ready.
fleet_wait_ready() {
  local index="$1" deadline=$((SECONDS + ${2:-60})) port
  port="$(cat "$FLEET_DIR/replica$index.port")"
  until curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! fleet_pid "replica$index" >/dev/null; then
      log "replica$index is not ready; the end of its log ($FLEET_DIR/replica$index.log):"
      tail -n 30 "$FLEET_DIR/replica$index.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# fleet_start N: the database, the migrations, N replicas and the load balancer.
fleet_start() {
  local count="$1" index lb_port base
  case "$count" in [1-9]) ;; *) log "the fleet has 1 to 9 replicas (deploy/haproxy.cfg names 9), not '$count'"; return 2 ;; esac
  if [ -d "$FLEET_DIR" ] && ls "$FLEET_DIR"/*.pid >/dev/null 2>&1; then
    for file in "$FLEET_DIR"/*.pid; do
      if fleet_pid "$(basename "$file" .pid)" >/dev/null; then
        log "a fleet is running from $FLEET_DIR: scripts/fleet.sh stop first"
        return 1
      fi
    done
  fi
  rm -f "$FLEET_DIR"/*.pid "$FLEET_DIR"/*.port
  mkdir -p "$FLEET_DIR"
  chmod 755 "$FLEET_DIR"
  lb_port="${ORCH_LB_PORT:-8080}"
  base="${ORCH_FLEET_BASE_PORT:-$((lb_port + 1))}"
  echo "$lb_port" >"$FLEET_DIR/haproxy.port"
  echo "$count" >"$FLEET_DIR/count"
  for index in $(seq 1 "$count"); do echo $((base + index - 1)) >"$FLEET_DIR/replica$index.port"; done
  fleet_binary
  fleet_database
  ORCH_DATABASE_URL="$(cat "$FLEET_DIR/database_url")" "$(cat "$FLEET_DIR/binary")" migrate >"$FLEET_DIR/migrate.log" 2>&1 \
    || { cat "$FLEET_DIR/migrate.log" >&2; return 1; }
  for index in $(seq 1 "$count"); do fleet_start_replica "$index"; done
  for index in $(seq 1 "$count"); do fleet_wait_ready "$index" || return 1; done
  fleet_start_balancer
}

# fleet_start_balancer: HAProxy with deploy/haproxy.cfg, one server per replica.
fleet_start_balancer() {
  local index count lb_port
  count="$(cat "$FLEET_DIR/count")"
  lb_port="$(cat "$FLEET_DIR/haproxy.port")"
  local environment=("ORCH_LB_BIND=127.0.0.1:$lb_port")
  for index in $(seq 1 "$count"); do
    environment+=("ORCH_LB_REPLICA_$index=127.0.0.1:$(cat "$FLEET_DIR/replica$index.port")")
  done
  env "${environment[@]}" haproxy -c -q -f deploy/haproxy.cfg || return 1
  env "${environment[@]}" setsid haproxy -f deploy/haproxy.cfg >>"$FLEET_DIR/haproxy.log" 2>&1 </dev/null &
  echo $! >"$FLEET_DIR/haproxy.pid"
  disown $!
  local deadline=$((SECONDS + 20))
  until curl -fsS "http://127.0.0.1:$lb_port/health" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "the load balancer does not answer"; tail -n 20 "$FLEET_DIR/haproxy.log" >&2; return 1; }
    sleep 0.1
  done
}

# fleet_stop: stops the replicas (SIGTERM: they hand their jobs back), the load balancer and the
# fleet's own PostgreSQL, whatever state each is in (a SIGSTOPped one is continued first).
fleet_stop() {
  local file name pid
  for file in "$FLEET_DIR"/*.pid; do
    [ -f "$file" ] || continue
    name="$(basename "$file" .pid)"
    if pid="$(fleet_pid "$name")"; then
      kill -CONT "$pid" 2>/dev/null || true
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  local deadline=$((SECONDS + 30))
  for file in "$FLEET_DIR"/*.pid; do
    [ -f "$file" ] || continue
    name="$(basename "$file" .pid)"
    while pid="$(fleet_pid "$name")"; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
      sleep 0.1
    done
    rm -f "$file"
  done
  if [ -f "$FLEET_DIR/pg.port" ]; then
    pg_stop "$FLEET_DIR/pgdata"
    rm -f "$FLEET_DIR/pg.port"
  fi
}

# fleet_status: one line per replica (`replica1 pid=N port=P health=ready`), then the load
# balancer and the database; non-zero when anything is not up.
fleet_status() {
  local index count pid port health failed=0
  if [ ! -f "$FLEET_DIR/count" ]; then
    echo "no fleet in $FLEET_DIR"
    return 1
  fi
  count="$(cat "$FLEET_DIR/count")"
  for index in $(seq 1 "$count"); do
    port="$(cat "$FLEET_DIR/replica$index.port" 2>/dev/null || echo -)"
    if pid="$(fleet_pid "replica$index")"; then
      if [ "$(ps -o state= -p "$pid" | tr -d ' ')" = "T" ]; then
        health=stopped-by-signal
        failed=1
      elif curl -fsS -m 2 "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then
        health=ready
      else
        health=unready
        failed=1
      fi
    else
      pid=-
      health=down
      failed=1
    fi
    echo "replica$index pid=$pid port=$port health=$health"
  done
  port="$(cat "$FLEET_DIR/haproxy.port" 2>/dev/null || echo -)"
  if pid="$(fleet_pid haproxy)" && curl -fsS -m 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
    echo "loadbalancer pid=$pid port=$port health=ready url=http://127.0.0.1:$port"
  else
    echo "loadbalancer pid=${pid:--} port=$port health=down"
    failed=1
  fi
  echo "database $(sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' "$FLEET_DIR/database_url" 2>/dev/null)"
  return $failed
}
