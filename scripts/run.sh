#!/usr/bin/env bash
# Installs what is missing, builds, starts Redis, a throwaway PostgreSQL and the
# three services on loopback, runs a demo patient episode, then keeps everything
# up until Ctrl-C, which stops all it started. Safe to run again, from any checkout
# location (also as root from a directory the postgres user cannot enter).
#
# Ports (override by environment): PHYSIO_REDIS_PORT=6380 PHYSIO_PG_PORT=5433
#   PHYSIO_ASSESSMENT_PORT=50051 PHYSIO_PLANNING_PORT=50052 PHYSIO_PROGRESS_PORT=50053
# PHYSIO_RUN_DIR: state (keys, logs, Redis data, env file); default .run/ in the checkout (git-ignored).
# PHYSIO_EXIT_AFTER_DEMO=1: stop everything after the demo instead of waiting.
# PHYSIO_SKIP_BUILD=1: use the existing build (no apt, no cmake).
set -euo pipefail
source "$(dirname "$0")/common.sh"

REDIS_PORT="${PHYSIO_REDIS_PORT:-6380}"
PG_PORT="${PHYSIO_PG_PORT:-5433}"
ASSESSMENT_PORT="${PHYSIO_ASSESSMENT_PORT:-50051}"
PLANNING_PORT="${PHYSIO_PLANNING_PORT:-50052}"
PROGRESS_PORT="${PHYSIO_PROGRESS_PORT:-50053}"
RUN_DIR="${PHYSIO_RUN_DIR:-$ROOT/.run}"
LOG_DIR="$RUN_DIR/logs"

if [ "${PHYSIO_SKIP_BUILD:-0}" != "1" ]; then
  install_packages "${RUN_PACKAGES[@]}"
  build_all OFF
fi
BIN="$BUILD_DIR/services"
PG_BIN="$(pg_bin_dir)"
mkdir -p "$RUN_DIR" "$LOG_DIR" "$RUN_DIR/redis"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
LOG_DIR="$RUN_DIR/logs"

# PostgreSQL refuses to run as root, so as root it runs as the postgres user, and
# its data must live where that user can reach it: a checkout under /root or in a
# mode-0700 directory is out of its reach. So as root the data directory and its
# log live under the postgres user's home, one per run directory; otherwise in it.
if [ "$(id -u)" -eq 0 ]; then
  PG_HOME="$(getent passwd postgres | cut -d: -f6)"
  RUN_KEY="$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-16)"
  PG_STATE="$PG_HOME/physio-run/$RUN_KEY"
  mkdir -p "$PG_STATE"
  chown postgres:postgres "$PG_HOME/physio-run" "$PG_STATE"
  chmod 0700 "$PG_STATE"
  printf '%s\n' "$RUN_DIR" >"$PG_STATE/run-dir"  # which checkout this belongs to
  chown postgres:postgres "$PG_STATE/run-dir"
  # From / : the postgres user may not be able to enter the directory run.sh was started in.
  pg() { (cd / && runuser -u postgres -- "$@"); }
else
  PG_STATE="$RUN_DIR"
  pg() { "$@"; }
fi
PGDATA="$PG_STATE/pgdata"
PG_LOG="$PG_STATE/postgres.log"
ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"

PIDS=()
stop_all() {
  trap - EXIT INT TERM
  echo
  echo "== stopping"
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  echo "== stopped"
}

# A previous run that was killed without cleanup: stop what it left.
if [ -f "$RUN_DIR/pids" ]; then
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$RUN_DIR/pids"
  sleep 1
  rm -f "$RUN_DIR/pids"
fi
if [ -f "$PGDATA/postmaster.pid" ]; then
  pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
fi
trap stop_all EXIT INT TERM

echo "== redis on 127.0.0.1:$REDIS_PORT"
# maxmemory with noeviction: live sessions are never evicted silently; when full,
# writes fail (clients get UNAVAILABLE and retry) and reads go on.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" --appendonly yes \
  --maxmemory 256mb --maxmemory-policy noeviction --save "" --logfile "$LOG_DIR/redis.log" &
PIDS+=($!)

echo "== postgresql on 127.0.0.1:$PG_PORT (data in $PGDATA)"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  pg mkdir -p "$PGDATA"
  pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >"$LOG_DIR/initdb.log"
fi
pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGDATA -c max_connections=300" start >/dev/null
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='physio'" | grep -q 1; then
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE physio"
fi

if [ ! -f "$RUN_DIR/keys/jwt-public.pem" ]; then
  "$BIN/devtools/physio-mint-token" --generate-key="$RUN_DIR/keys" >/dev/null
fi

# The settings the services get, also written to an env file so a binary started
# by hand reaches the same stores: set -a; . .run/env; set +a
cat >"$RUN_DIR/env" <<ENV
PHYSIO_REDIS_PORT=$REDIS_PORT
PHYSIO_PG_PORT=$PG_PORT
PHYSIO_PG_DATABASE=physio
PHYSIO_JWT_PUBLIC_KEY=$RUN_DIR/keys/jwt-public.pem
PHYSIO_ASSESSMENT_ADDR=127.0.0.1:$ASSESSMENT_PORT
PHYSIO_PLANNING_ADDR=127.0.0.1:$PLANNING_PORT
ENV
set -a
# shellcheck source=/dev/null
. "$RUN_DIR/env"
set +a
start_service() {  # name port
  echo "== $1 on 127.0.0.1:$2"
  "$BIN/$1/physio-$1" --listen="127.0.0.1:$2" >"$LOG_DIR/$1.log" 2>&1 &
  PIDS+=($!)
}
start_service assessment "$ASSESSMENT_PORT"
start_service planning "$PLANNING_PORT"
start_service progress "$PROGRESS_PORT"
printf '%s\n' "${PIDS[@]}" >"$RUN_DIR/pids"

for port in "$ASSESSMENT_PORT" "$PLANNING_PORT" "$PROGRESS_PORT"; do
  if ! "$BIN/devtools/physio-probe" --addr="127.0.0.1:$port" --wait-ms=30000; then
    echo "a service did not become healthy; logs in $LOG_DIR" >&2
    tail -n 20 "$LOG_DIR"/*.log >&2
    exit 1
  fi
done

"$BIN/devtools/physio-demo" --key="$RUN_DIR/keys/jwt-private.pem" \
  --assessment-addr="127.0.0.1:$ASSESSMENT_PORT" --planning-addr="127.0.0.1:$PLANNING_PORT" \
  --progress-addr="127.0.0.1:$PROGRESS_PORT"

if [ "${PHYSIO_EXIT_AFTER_DEMO:-0}" = "1" ]; then exit 0; fi
cat <<MSG

The services keep running (logs in $LOG_DIR; their settings in $RUN_DIR/env).
Mint a token to call them yourself:
  $BIN/devtools/physio-mint-token --key=$RUN_DIR/keys/jwt-private.pem --tenant=demo-clinic --sub=clin-1 --roles=clinician
Press Ctrl-C to stop everything.
MSG
wait
