#!/usr/bin/env bash
# Starts the whole stack (run.sh: Redis, a new PostgreSQL, the three services)
# and stops it again, N times in a row, each start right after the previous
# stop, on the same ports, optionally with the CPUs kept busy. Every start must
# reach SERVING or fail with a clear error naming the cause; the logs of any
# start that did not are kept.
#
#   ./scripts/start-loop.sh [N=30]
#   PHYSIO_LOOP_LOAD=2   busy processes beside the stack (default 2; 0 for none)
#   PHYSIO_LOOP_DIR      where each start's run directory goes (default /tmp/physio-start-loop)
#   PHYSIO_SKIP_BUILD=1  use the existing build
# Ports: run.sh's variables (defaults here 46380, 45433, 47051-47053).
# Exit status: 0 when every start reached SERVING.
set -euo pipefail
source "$(dirname "$0")/common.sh"

COUNT="${1:-30}"
LOOP_DIR="${PHYSIO_LOOP_DIR:-/tmp/physio-start-loop}"
LOAD="${PHYSIO_LOOP_LOAD:-2}"
export PHYSIO_REDIS_PORT="${PHYSIO_REDIS_PORT:-46380}" PHYSIO_PG_PORT="${PHYSIO_PG_PORT:-45433}"
export PHYSIO_ASSESSMENT_PORT="${PHYSIO_ASSESSMENT_PORT:-47051}" PHYSIO_PLANNING_PORT="${PHYSIO_PLANNING_PORT:-47052}"
export PHYSIO_PROGRESS_PORT="${PHYSIO_PROGRESS_PORT:-47053}"

if [ "${PHYSIO_SKIP_BUILD:-0}" != "1" ]; then
  install_packages "${RUN_PACKAGES[@]}"
  build_all OFF
fi
rm -rf "$LOOP_DIR"
mkdir -p "$LOOP_DIR"

BURNERS=()
stop_burners() { for pid in "${BURNERS[@]+"${BURNERS[@]}"}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_burners EXIT
for _ in $(seq 1 "$LOAD"); do
  (while :; do :; done) &
  BURNERS+=($!)
done

failures=0
for i in $(seq 1 "$COUNT"); do
  run_dir="$LOOP_DIR/start-$i"
  started=$SECONDS
  status=0
  PHYSIO_SKIP_BUILD=1 PHYSIO_SKIP_DEMO=1 PHYSIO_EXIT_AFTER_DEMO=1 PHYSIO_RUN_DIR="$run_dir" \
    "$ROOT/scripts/run.sh" >"$LOOP_DIR/start-$i.out" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    echo "start $i: SERVING ($((SECONDS - started)) s)"
    # run.sh keeps PostgreSQL's data under the postgres user's home when run as root.
    if [ "$(id -u)" -eq 0 ]; then
      key="$(printf '%s' "$(cd "$run_dir" && pwd)" | sha256sum | cut -c1-16)"
      rm -rf "$(getent passwd postgres | cut -d: -f6)/physio-run/$key"
    fi
    rm -rf "$run_dir" "$LOOP_DIR/start-$i.out"
  else
    failures=$((failures + 1))
    echo "start $i: FAILED (run.sh exit $status after $((SECONDS - started)) s); output in $LOOP_DIR/start-$i.out, logs in $run_dir/logs"
    grep -E "exited during startup|did not become healthy|cannot|error" "$LOOP_DIR/start-$i.out" | head -n 5 || true
  fi
done
echo "== $((COUNT - failures)) of $COUNT starts reached SERVING"
[ "$failures" -eq 0 ]
