# Shared helpers for scripts/*.sh: system packages and a throwaway PostgreSQL cluster.
# Sourced, not executed.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ensure_packages [COMMAND...]: installs the Debian packages the build and tests need, if any
# is missing, and the package of each COMMAND not on PATH (named like the command: git, wrk).
# Uses sudo when not root.
ensure_packages() {
  local missing=() command
  for command in "$@"; do command -v "$command" >/dev/null 2>&1 || missing+=("$command"); done
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  [ -f /usr/include/postgresql/libpq-fe.h ] || missing+=(libpq-dev)
  [ -f /usr/include/openssl/hmac.h ] || missing+=(libssl-dev)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  find_pg_bin >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# wait_ready URL LOG: waits up to 20 s for URL to answer 2xx; otherwise prints LOG (the server's
# output) and fails.
wait_ready() {
  local url="$1" output="$2"
  for _ in $(seq 1 200); do curl -fsS "$url" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "$url did not answer in 20 s; its log ($output):"
  tail -n 50 "$output" >&2
  return 1
}

# seed_bare_remote DIR TEXT: creates a bare repository at DIR whose main branch has one commit,
# a README.md holding TEXT (the stand-in remote of the demo and the pipeline benchmark).
seed_bare_remote() {
  local remote="$1" text="$2" seed
  git init --quiet --bare --initial-branch=main "$remote"
  seed="$(mktemp -d)"
  git -C "$seed" init --quiet --initial-branch=main
  printf '%s\n' "$text" >"$seed/README.md"
  git -C "$seed" add -A
  git -C "$seed" -c user.name=orchestrator -c user.email=orchestrator@localhost commit --quiet -m "initial commit"
  git -C "$seed" push --quiet "$remote" main
  rm -rf "$seed"
}

# Prints the directory holding initdb/pg_ctl (PATH first, then Debian's versioned layout).
find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

# Runs a command as the postgres user when we are root (the server refuses to run as root).
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# free_port [COUNT]: a port P such that P .. P+COUNT-1 on 127.0.0.1 are free right now, chosen
# below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range). A port from inside
# that range (what binding port 0 returns) can be handed out as the local end of an outgoing
# connection, say a replica's to Postgres, between the check and the server's own bind: the
# server then dies with "Address already in use" (a CI run of chaos.sh did).
free_port() {
  python3 - "${1:-1}" <<'PY' 2>/dev/null || echo 25432
import random, socket, sys
count = int(sys.argv[1])
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    low = 32768
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
if low - count > 10000:
    for _ in range(1000):
        base = random.randint(10000, low - count)
        if all(free(base + i) for i in range(count)):
            print(base)
            sys.exit(0)
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# pg_start DATA_DIR PORT: initialises DATA_DIR if needed and starts a server on 127.0.0.1:PORT.
pg_start() {
  local data="$1" port="$2" bin
  bin="$(find_pg_bin)" || { log "PostgreSQL server binaries not found"; return 1; }
  mkdir -p "$data"
  # Only the data directory becomes the postgres user's: whatever lies beside it (run.sh keeps
  # the demo's git remote and workdirs there) stays ours, or git refuses it as "dubious ownership".
  # The parent only has to be traversable (run.sh and throwaway_pg_start make it 755).
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$data" 2>/dev/null
  chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg_user "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 \
      || as_pg_user "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 >"$data.initdb.log" 2>&1 \
      || { cat "$data.initdb.log" >&2; return 1; }
  fi
  as_pg_user "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c max_connections=300 -c shared_buffers=256MB" start >/dev/null \
    || { cat "$data/server.log" >&2; return 1; }
  log "PostgreSQL running on 127.0.0.1:$port (data $data)"
}

# pg_stop DATA_DIR: stops the server started by pg_start.
pg_stop() {
  local data="$1" bin
  bin="$(find_pg_bin)" || return 0
  [ -f "$data/postmaster.pid" ] && as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# throwaway_pg_start: starts a server in a new temporary folder on a free port and sets
# THROWAWAY_DIR and THROWAWAY_URL; throwaway_pg_stop stops it and removes the folder.
throwaway_pg_start() {
  THROWAWAY_DIR="$(mktemp -d /tmp/orch-pg.XXXXXX)"
  chmod 755 "$THROWAWAY_DIR"
  local port
  port="$(free_port)"
  pg_start "$THROWAWAY_DIR/data" "$port"
  THROWAWAY_URL="postgresql://postgres@127.0.0.1:$port/postgres"
}

throwaway_pg_stop() {
  if [ -n "${THROWAWAY_DIR:-}" ]; then
    pg_stop "$THROWAWAY_DIR/data"
    rm -rf "$THROWAWAY_DIR"
    THROWAWAY_DIR=""
  fi
}

# export_pg_env URL: sets PGHOST, PGPORT, PGUSER and PGDATABASE from a postgresql:// URI, for
# psql, pgbench and ../shared/bench/pg-limits.sh.
export_pg_env() {
  local parsed
  parsed="$(python3 - "$1" <<'PY'
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(p.hostname or "", p.port or 5432, p.username or "postgres", p.path.lstrip("/") or "postgres")
PY
)"
  read -r PGHOST PGPORT PGUSER PGDATABASE <<<"$parsed"
  export PGHOST PGPORT PGUSER PGDATABASE
}

# bench_database_and_binary: for the bench scripts. Uses ORCH_DATABASE_URL, else starts a
# throwaway PostgreSQL (the caller's EXIT trap must call throwaway_pg_stop); exports the PG*
# variables; builds the release binary into $bin and applies the migrations.
bench_database_and_binary() {
  if [ -z "${ORCH_DATABASE_URL:-}" ]; then
    throwaway_pg_start
    export ORCH_DATABASE_URL="$THROWAWAY_URL"
  fi
  export_pg_env "$ORCH_DATABASE_URL"
  local scratch="${ORCH_RELEASE_SCRATCH:-.build-release}"
  swift build -c release --product orchestrator --scratch-path "$scratch" >/dev/null
  bin="$scratch/release/orchestrator"
  "$bin" migrate >/dev/null 2>&1
}

# bench_setup NAME: a benchmark's scratch folder ($work, mode 755 so agents under other users can
# reach it), the processes it starts ($pids, stopped at exit with the throwaway PostgreSQL and the
# folder), the database and release binary (bench_database_and_binary: $bin) and $python.
bench_setup() {
  pids=()
  work="$(mktemp -d "/tmp/orch-bench-$1.XXXXXX")"
  chmod 755 "$work"
  trap bench_cleanup EXIT
  bench_database_and_binary
  python="$(command -v /usr/bin/python3 || command -v python3)"
}
bench_cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  throwaway_pg_stop
  rm -rf "$work"
}
