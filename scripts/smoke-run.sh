#!/usr/bin/env bash
# ctest's check of ./scripts/run.sh: the real script, against an existing build,
# on free ports and a throwaway state directory, twice (the second run reuses
# the data directory and keys), stopping after the demo each time.
set -euo pipefail
BUILD_DIR="${1:?usage: smoke-run.sh BUILD_DIR}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

free_port() {  # a port nothing listens on, from the ephemeral-ish range
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

RUN_DIR="$(mktemp -d /tmp/physio-smoke-XXXXXX)"
chmod 755 "$RUN_DIR"
trap 'rm -rf "$RUN_DIR"' EXIT
export PHYSIO_BUILD_DIR="$BUILD_DIR" PHYSIO_SKIP_BUILD=1 PHYSIO_EXIT_AFTER_DEMO=1 PHYSIO_RUN_DIR="$RUN_DIR"
for attempt in 1 2; do
  export PHYSIO_REDIS_PORT="$(free_port)" PHYSIO_PG_PORT="$(free_port)"
  export PHYSIO_ASSESSMENT_PORT="$(free_port)" PHYSIO_PLANNING_PORT="$(free_port)" PHYSIO_PROGRESS_PORT="$(free_port)"
  output="$("$ROOT/scripts/run.sh" 2>&1)" || { echo "$output"; echo "run $attempt failed"; exit 1; }
  for expected in "SERVING" "INSTRUMENT_ODI   score 35.6 (moderate)" "PLAN_STATUS_ACTIVE" "home logs 2" \
                   "Demo episode complete." "== stopped"; do
    grep -qF "$expected" <<<"$output" || { echo "$output"; echo "run $attempt: missing '$expected'"; exit 1; }
  done
  echo "run $attempt: demo complete"
done
