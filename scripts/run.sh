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
# PHYSIO_OIDC_ISSUERS_FILE: also trust these OpenID Connect issuers (docs/security.md).
# PHYSIO_SKIP_DEMO=1: no demo episode (the stack only); PHYSIO_STARTUP_WAIT_S (60): how long
#   services may take to answer SERVING before run.sh gives up, showing their logs.
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
# Keys, passwords and logs: for this user only.
chmod 0700 "$RUN_DIR"
SECRETS="$RUN_DIR/secrets"
mkdir -p "$SECRETS"
chmod 0700 "$SECRETS"
secret() {  # name: a random password kept in $SECRETS/name (0600), made on first use
  local file="$SECRETS/$1"
  if [ ! -s "$file" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  cat "$file"
}

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
  rm -f "$RUN_DIR/pids"  # stopped: the next run has nothing of this one to stop
  echo "== stopped"
}

# A previous run that was killed without cleanup: stop what it left.
PORTS_FREE_BY=$SECONDS
if [ -f "$RUN_DIR/pids" ]; then
  while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$RUN_DIR/pids"
  sleep 1
  rm -f "$RUN_DIR/pids"
  PORTS_FREE_BY=$((SECONDS + 10))  # its services may take a few seconds to let go of their ports
fi
if [ -f "$PGDATA/postmaster.pid" ]; then
  pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
fi
# Every port this run listens on must be free. Something else answering on a service's port (a
# stack started by hand, another checkout's run.sh) would answer this run's probes and demo while
# the service started here exits unable to listen: a stack that looks up but runs other binaries.
RUN_PORTS=("$REDIS_PORT" "$PG_PORT")
for port in "$ASSESSMENT_PORT" "$PLANNING_PORT" "$PROGRESS_PORT"; do
  RUN_PORTS+=("$port" $((port + 1000)) $((port + 2000)))  # gRPC, HTTP (Connect), /metrics
done
while :; do
  busy=()
  for port in "${RUN_PORTS[@]}"; do
    if port_in_use "$port"; then busy+=("$port"); fi
  done
  [ "${#busy[@]}" -gt 0 ] && [ "$SECONDS" -lt "$PORTS_FREE_BY" ] && { sleep 0.5; continue; }
  break
done
if [ "${#busy[@]}" -gt 0 ]; then
  echo "run.sh: port(s) ${busy[*]} on 127.0.0.1 already in use; stop what listens there, or choose other" \
    "ports (PHYSIO_REDIS_PORT, PHYSIO_PG_PORT, PHYSIO_ASSESSMENT_PORT, PHYSIO_PLANNING_PORT, PHYSIO_PROGRESS_PORT)" >&2
  if command -v ss >/dev/null 2>&1; then
    for port in "${busy[@]}"; do ss -tanpH "( sport = :$port )" 2>/dev/null | head -n 3 >&2 || true; done
  fi
  exit 1
fi
trap stop_all EXIT INT TERM
# Before anything starts: no outgoing connection of this stack may take a port a later service listens on.
reserve_ephemeral_ports "${RUN_PORTS[@]}"

echo "== redis on 127.0.0.1:$REDIS_PORT"
# maxmemory with noeviction: live sessions are never evicted silently; when full,
# writes fail (clients get UNAVAILABLE and retry) and reads go on.
# AOF fsynced before each reply (PHYSIO_REDIS_APPENDFSYNC=everysec trades that for speed):
# see docs/reliability.md for what a crash can lose.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" --appendonly yes \
  --appendfsync "${PHYSIO_REDIS_APPENDFSYNC:-always}" \
  --maxmemory 256mb --maxmemory-policy noeviction --save "" --logfile "$LOG_DIR/redis.log" &
PIDS+=($!)

echo "== postgresql on 127.0.0.1:$PG_PORT (data in $PGDATA)"
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  pg mkdir -p "$PGDATA"
  pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >"$LOG_DIR/initdb.log"
fi
pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGDATA -c max_connections=300" start >/dev/null
PGPASSWORD="$(secret postgres)"
export PGPASSWORD
sql() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }
# Passwords (scram-sha-256) for every connection. A data directory made by
# initdb (or by an older run.sh) starts with trust: set the superuser's
# password while trust still lets us in, then switch.
if ! grep -q '^# physio-run: scram' "$PGDATA/pg_hba.conf" 2>/dev/null; then
  sql -qc "SET password_encryption = 'scram-sha-256'; ALTER ROLE postgres PASSWORD '$PGPASSWORD'"
  printf '%s\n' '# physio-run: scram-sha-256 for every connection' \
    'local all all scram-sha-256' 'host all all 127.0.0.1/32 scram-sha-256' 'host all all ::1/128 scram-sha-256' |
    pg tee "$PGDATA/pg_hba.conf" >/dev/null
  pg "$PG_BIN/pg_ctl" -D "$PGDATA" reload >/dev/null
  sleep 0.5
fi
if ! sql -tAc "SELECT 1 FROM pg_database WHERE datname='physio'" | grep -q 1; then
  sql -qc "CREATE DATABASE physio"
fi
# One owner role per service (owns its schema, runs its migrations) and one
# role the service runs as (its own tables only; the audit table INSERT-only).
for svc in assessment planning progress; do
  sql -q -d physio <<SQL
SET password_encryption = 'scram-sha-256';
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'physio_${svc}_owner') THEN CREATE ROLE physio_${svc}_owner LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'physio_${svc}') THEN CREATE ROLE physio_${svc} LOGIN; END IF;
END \$\$;
ALTER ROLE physio_${svc}_owner PASSWORD '$(secret "physio_${svc}_owner")';
ALTER ROLE physio_${svc} PASSWORD '$(secret "physio_${svc}")';
GRANT CONNECT, CREATE ON DATABASE physio TO physio_${svc}_owner;
GRANT CONNECT ON DATABASE physio TO physio_${svc};
-- A schema made by an older run.sh (as the superuser) passes to its owner role.
DO \$\$ DECLARE t record; BEGIN
  IF EXISTS (SELECT FROM pg_namespace WHERE nspname = '${svc}') THEN
    EXECUTE 'ALTER SCHEMA ${svc} OWNER TO physio_${svc}_owner';
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = '${svc}' LOOP
      EXECUTE format('ALTER TABLE ${svc}.%I OWNER TO physio_${svc}_owner', t.tablename);
    END LOOP;
  END IF;
END \$\$;
SQL
done
# The audit read API reads every service's audit table as a member of this role.
sql -q -d physio <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'physio_audit_reader') THEN CREATE ROLE physio_audit_reader NOLOGIN; END IF;
END \$\$;
GRANT physio_audit_reader TO physio_assessment;
SQL

if [ ! -f "$RUN_DIR/keys/jwt-public.pem" ]; then
  "$BIN/devtools/physio-mint-token" --generate-key="$RUN_DIR/keys" >/dev/null
fi

# The settings the services get, also written to env files so a binary started
# by hand reaches the same stores: set -a; . .run/env; . .run/env.assessment; set +a
for svc in assessment planning progress; do
  cat >"$RUN_DIR/env.$svc" <<ENV
PHYSIO_PG_USER=physio_$svc
PHYSIO_PG_PASSWORD_FILE=$SECRETS/physio_$svc
PHYSIO_PG_MIGRATION_USER=physio_${svc}_owner
PHYSIO_PG_MIGRATION_PASSWORD_FILE=$SECRETS/physio_${svc}_owner
ENV
done
cat >"$RUN_DIR/env" <<ENV
PHYSIO_REDIS_PORT=$REDIS_PORT
PHYSIO_PG_PORT=$PG_PORT
PHYSIO_PG_DATABASE=physio
PHYSIO_JWT_PUBLIC_KEY=$RUN_DIR/keys/jwt-public.pem
PHYSIO_ASSESSMENT_ADDR=127.0.0.1:$ASSESSMENT_PORT
PHYSIO_PLANNING_ADDR=127.0.0.1:$PLANNING_PORT
PHYSIO_PROGRESS_ADDR=127.0.0.1:$PROGRESS_PORT
ENV
set -a
# shellcheck source=/dev/null
. "$RUN_DIR/env"
set +a
SERVICES=(assessment planning progress)
declare -A SERVICE_PID SERVICE_PORT
start_service() {  # name port
  echo "== $1 on 127.0.0.1:$2 (gRPC), 127.0.0.1:$(($2 + 1000)) (HTTP: Connect protocol) and 127.0.0.1:$(($2 + 2000)) (/metrics)"
  (
    set -a
    # shellcheck source=/dev/null
    . "$RUN_DIR/env.$1"
    exec "$BIN/$1/physio-$1" --listen="127.0.0.1:$2"
  ) >"$LOG_DIR/$1.log" 2>&1 &
  PIDS+=($!)
  SERVICE_PID[$1]=$!
  SERVICE_PORT[$1]=$2
}
start_service assessment "$ASSESSMENT_PORT"
start_service planning "$PLANNING_PORT"
start_service progress "$PROGRESS_PORT"
printf '%s\n' "${PIDS[@]}" >"$RUN_DIR/pids"

# Until every service answers SERVING. A service that exits meanwhile is
# reported at once, with its exit status (or signal) and the end of its log;
# one that neither serves nor exits within PHYSIO_STARTUP_WAIT_S is reported
# with its log too (its startup phases say where it waits).
service_exited() {  # name: prints how it ended and its log's tail
  local status=0
  wait "${SERVICE_PID[$1]}" || status=$?
  if [ "$status" -gt 128 ]; then
    echo "$1 exited during startup: killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))" >&2
  else
    echo "$1 exited during startup with status $status" >&2
  fi
  echo "-- last lines of $LOG_DIR/$1.log:" >&2
  tail -n 30 "$LOG_DIR/$1.log" >&2
}
STARTUP_DEADLINE=$((SECONDS + ${PHYSIO_STARTUP_WAIT_S:-60}))
waiting=("${SERVICES[@]}")
while [ "${#waiting[@]}" -gt 0 ]; do
  still=()
  for svc in "${waiting[@]}"; do
    if ! kill -0 "${SERVICE_PID[$svc]}" 2>/dev/null; then
      service_exited "$svc"
      exit 1
    fi
    if ! "$BIN/devtools/physio-probe" --addr="127.0.0.1:${SERVICE_PORT[$svc]}" --wait-ms=500 >/dev/null 2>&1; then
      still+=("$svc")
    fi
  done
  waiting=("${still[@]+"${still[@]}"}")
  if [ "${#waiting[@]}" -gt 0 ] && [ "$SECONDS" -ge "$STARTUP_DEADLINE" ]; then
    for svc in "${waiting[@]}"; do
      echo "$svc did not become healthy within ${PHYSIO_STARTUP_WAIT_S:-60} s (still running); last lines of $LOG_DIR/$svc.log:" >&2
      tail -n 30 "$LOG_DIR/$svc.log" >&2
    done
    exit 1
  fi
done
for svc in "${SERVICES[@]}"; do
  if ! kill -0 "${SERVICE_PID[$svc]}" 2>/dev/null; then  # the answer came from another process
    service_exited "$svc"
    exit 1
  fi
done
echo "== all three services SERVING"
if [ "${PHYSIO_SKIP_DEMO:-0}" = "1" ]; then
  if [ "${PHYSIO_EXIT_AFTER_DEMO:-0}" = "1" ]; then exit 0; fi
  echo "Press Ctrl-C to stop everything."
  wait
  exit 0
fi

"$BIN/devtools/physio-demo" --key="$RUN_DIR/keys/jwt-private.pem" \
  --assessment-addr="127.0.0.1:$ASSESSMENT_PORT" --planning-addr="127.0.0.1:$PLANNING_PORT" \
  --progress-addr="127.0.0.1:$PROGRESS_PORT" --fhir-base="http://127.0.0.1:$((ASSESSMENT_PORT + 1000))/fhir/R4"

if [ "${PHYSIO_EXIT_AFTER_DEMO:-0}" = "1" ]; then exit 0; fi
cat <<MSG

The services keep running (logs in $LOG_DIR; their settings in $RUN_DIR/env).
Mint a token to call them yourself:
  $BIN/devtools/physio-mint-token --key=$RUN_DIR/keys/jwt-private.pem --tenant=demo-clinic --sub=clin-1 --roles=clinician
Press Ctrl-C to stop everything.
MSG
wait
