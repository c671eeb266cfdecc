#!/usr/bin/env bash
# ctest's check of ./scripts/run.sh: the real script, against an existing build,
# on free ports, twice (the second run reuses the data directory and keys),
# stopping after the demo each time. The checkout it runs from sits in a mode-0700
# directory (as a clone under /root or from mktemp -d would), with run.sh's default
# state directory inside it, so running as root proves PostgreSQL still starts.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=common.sh
source "$ROOT/scripts/common.sh"  # port_in_use, port_reserved, reserved_port_ranges
BUILD_DIR="$(cd "${1:?usage: smoke-run.sh BUILD_DIR}" && pwd)"

free_port() {  # a port nothing listens on, below the kernel's ephemeral range (32768+), so
  local port  # no outgoing connection of a concurrent test can take it before run.sh binds it
  while :; do
    port=$((20000 + RANDOM % 12000))
    case " $CHOSEN " in *" $port "*) continue ;; esac  # never the same port twice in one run
    port_in_use "$port" || { echo "$port"; return; }
  done
}
CHOSEN=""
free_service_port() {  # a gRPC port whose HTTP (+1000) and metrics (+2000) ports are free too,
  local port           # all three below the ephemeral range (or, given "ephemeral", within it, as
  while :; do          # run.sh's defaults are)
    if [ "${1:-}" = ephemeral ]; then port=$((40000 + RANDOM % 15000)); else port=$((20000 + RANDOM % 10000)); fi
    case " $CHOSEN " in *" $port "* | *" $((port + 1000)) "* | *" $((port + 2000)) "*) continue ;; esac
    for p in "$port" $((port + 1000)) $((port + 2000)); do
      port_in_use "$p" && continue 2  # listened on, or a connection's own port
    done
    echo "$port"
    return
  done
}

CHECKOUT="$(mktemp -d /tmp/physio-smoke-XXXXXX)"  # mode 0700, like a clone under /root
[ "$(stat -c %a "$CHECKOUT")" = "700" ] || { echo "expected a mode-0700 directory"; exit 1; }
ln -s "$ROOT/scripts" "$CHECKOUT/scripts"
SECOND="$(mktemp -d /tmp/physio-smoke-XXXXXX)"  # another checkout, for the busy-port case
ln -s "$ROOT/scripts" "$SECOND/scripts"
# The ports run 1 had run.sh reserve from the ephemeral range (chosen unreserved) are given back at
# the end, so repeated test runs do not leave the machine's reserved list growing.
unreserve_ports() {  # ports...
  local low high port kept=()
  keep_range() { [ "$1" -gt "$2" ] || kept+=("$1$([ "$1" -eq "$2" ] || echo "-$2")"); }  # low high
  while read -r low high; do
    for port in $(printf '%s\n' "$@" | sort -n); do
      { [ "$port" -ge "$low" ] && [ "$port" -le "$high" ]; } || continue
      keep_range "$low" $((port - 1))
      low=$((port + 1))
    done
    keep_range "$low" "$high"
  done < <(reserved_port_ranges)
  { (IFS=,; echo "${kept[*]}") >/proc/sys/net/ipv4/ip_local_reserved_ports; } 2>/dev/null || true
}
RESERVED_BY_RUN_1=""
cleanup() {
  [ -z "$RESERVED_BY_RUN_1" ] || unreserve_ports $RESERVED_BY_RUN_1
  # run.sh keeps PostgreSQL's data outside the checkout when root: remove these runs'.
  for checkout in "$CHECKOUT" "$SECOND"; do
    grep -lxF "$checkout/.run" /var/lib/postgresql/physio-run/*/run-dir 2>/dev/null | xargs -r -n1 dirname | xargs -r rm -rf
  done
  rm -rf "$CHECKOUT" "$SECOND"
}
trap cleanup EXIT
unset PHYSIO_RUN_DIR
export PHYSIO_BUILD_DIR="$BUILD_DIR" PHYSIO_SKIP_BUILD=1 PHYSIO_EXIT_AFTER_DEMO=1
choose_ports() {  # [ephemeral]: the services' ports within the kernel's ephemeral range
  PHYSIO_REDIS_PORT="$(free_port)"; CHOSEN="$CHOSEN $PHYSIO_REDIS_PORT"
  PHYSIO_PG_PORT="$(free_port)"; CHOSEN="$CHOSEN $PHYSIO_PG_PORT"
  for service in ASSESSMENT PLANNING PROGRESS; do
    port="$(free_service_port "${1:-}")"
    CHOSEN="$CHOSEN $port $((port + 1000)) $((port + 2000))"
    # run.sh will reserve these: given back at the end, whether the run passes or fails.
    if [ "${1:-}" = ephemeral ]; then RESERVED_BY_RUN_1+=" $port $((port + 1000)) $((port + 2000))"; fi
    printf -v "PHYSIO_${service}_PORT" '%s' "$port"
  done
  export PHYSIO_REDIS_PORT PHYSIO_PG_PORT PHYSIO_ASSESSMENT_PORT PHYSIO_PLANNING_PORT PHYSIO_PROGRESS_PORT
}
for attempt in 1 2; do
  # The first run's service ports lie within the ephemeral range, as run.sh's defaults do.
  range=""; [ "$attempt" = 1 ] && range=ephemeral
  choose_ports $range
  # From inside the checkout, as a user would: the postgres user cannot enter that directory either.
  # A port another test took between the check and run.sh's bind is reported ("cannot listen on");
  # that run is repeated once on other ports, as the test harness does for its stores.
  if ! output="$(cd "$CHECKOUT" && ./scripts/run.sh 2>&1)"; then
    grep -q "cannot listen on" <<<"$output" || { echo "$output"; echo "run $attempt failed"; exit 1; }
    echo "run $attempt: a port was taken meanwhile; again on other ports"
    choose_ports $range
    output="$(cd "$CHECKOUT" && ./scripts/run.sh 2>&1)" || { echo "$output"; echo "run $attempt failed"; exit 1; }
  fi
  for expected in "SERVING" "INSTRUMENT_ODI   score 35.6 (moderate)" "PLAN_STATUS_ACTIVE" "home logs 2" \
                   "IRRITABILITY_MODERATE, PAIN_PATTERN_MECHANICAL, BMI 31.1" "Your flare-up plan" \
                   "Healthy weight and activity" "Preventing another episode" "EARLY_RESPONSE_ON_TRACK" \
                   "Your pain medicines: a review with your GP or pharmacist" "COURSE_BASIS_RECENT_ONSET" \
                   "None of the warning signs" "consent to treatment recorded by clin-demo-1" \
                   "audit records: assessment" "by: clin-demo-1" "planning: PLAN_DRAFTED PLAN_APPROVED" \
                   "progress: VISIT_RECORDED HOME_SESSION_LOGGED HOME_SESSION_LOGGED OUTCOME_RECORDED" \
                   "items translated, the rest in English, e.g." \
                   "visit: worse since the assessment: L5 left 4/5 -> 2/5" "the plan is now PLAN_STATUS_SUSPENDED" \
                   "re-assess: centralising with repeated flexion in lying; the plan follows extension" \
                   "re-assessment: direction extension -> flexion" "proposed: direction: extension -> direction: flexion" \
                   "revised plan approved: direction flexion" \
                   "draft from template tenant.tpl.back_to_lifting" "tenant.ex.hip_hinge_band" \
                   "Demo episode complete." "== stopped"; do
    grep -qF "$expected" <<<"$output" || { echo "$output"; echo "run $attempt: missing '$expected'"; exit 1; }
  done
  grep -qx "PHYSIO_PG_PORT=$PHYSIO_PG_PORT" "$CHECKOUT/.run/env" || { echo "env file lacks the PostgreSQL port"; exit 1; }
  if [ "$attempt" = 1 ]; then
    # Its ports within the ephemeral range were kept from outgoing connections before anything
    # started, or it said why it could not.
    if grep -qF "could not be reserved" <<<"$output"; then
      echo "run 1: this machine does not let run.sh reserve ports (said so)"
    else
      for port in "$PHYSIO_ASSESSMENT_PORT" $((PHYSIO_PLANNING_PORT + 1000)) $((PHYSIO_PROGRESS_PORT + 2000)); do
        port_reserved "$port" || { echo "$output"; echo "run 1: port $port not reserved from the ephemeral range"; exit 1; }
      done
    fi
  fi
  echo "run $attempt: demo complete"
done

# A service that cannot start is reported at once, with its exit status and its
# log's last lines, not after a probe's time-out: here planning is given a library file that does not exist.
started=$SECONDS
output="$(cd "$CHECKOUT" && PHYSIO_SKIP_DEMO=1 PHYSIO_LIBRARY_FILE=/nonexistent/library.json ./scripts/run.sh 2>&1)" &&
  { echo "$output"; echo "run.sh succeeded with a missing library file"; exit 1; }
for expected in "planning exited during startup with status 1" "/nonexistent/library.json" "== stopped"; do
  grep -qF "$expected" <<<"$output" || { echo "$output"; echo "failed start: missing '$expected'"; exit 1; }
done
[ $((SECONDS - started)) -lt 30 ] || { echo "$output"; echo "the failed start took $((SECONDS - started)) s to report"; exit 1; }
echo "failed start: reported at once"

# A port of this run already taken by another process: run.sh says which and stops before starting
# anything. Here it is the realistic case: a second checkout's run.sh on the first one's service
# ports while that stack is up. Before, the first stack answered the second run's health probes:
# "all three services SERVING", and the demo ran against the first stack's binaries, while the
# services the second run had started exited, unable to listen.
choose_ports
first_log="$(mktemp)"
(cd "$CHECKOUT" && PHYSIO_SKIP_DEMO=1 PHYSIO_EXIT_AFTER_DEMO=0 exec ./scripts/run.sh >"$first_log" 2>&1) &
first=$!
for _ in $(seq 120); do grep -q "Press Ctrl-C" "$first_log" && break; sleep 0.5; done
grep -q "Press Ctrl-C" "$first_log" || { cat "$first_log"; kill "$first"; echo "busy port: the first stack did not start"; exit 1; }
PHYSIO_REDIS_PORT="$(free_port)"; CHOSEN="$CHOSEN $PHYSIO_REDIS_PORT"
PHYSIO_PG_PORT="$(free_port)"; CHOSEN="$CHOSEN $PHYSIO_PG_PORT"
started=$SECONDS
status=0
output="$(cd "$SECOND" && ./scripts/run.sh 2>&1)" || status=$?
kill -TERM "$first"; wait "$first" 2>/dev/null || true; rm -f "$first_log"
[ "$status" -ne 0 ] || { echo "$output"; echo "run.sh succeeded with its service ports taken by another stack"; exit 1; }
grep -qF "port(s) $PHYSIO_ASSESSMENT_PORT $((PHYSIO_ASSESSMENT_PORT + 1000))" <<<"$output" &&
  grep -qF "already in use" <<<"$output" || { echo "$output"; echo "busy port: not named"; exit 1; }
if grep -qE "SERVING|== redis on" <<<"$output"; then echo "$output"; echo "busy port: run.sh started the stack anyway"; exit 1; fi
[ $((SECONDS - started)) -lt 30 ] || { echo "$output"; echo "the busy port took $((SECONDS - started)) s to report"; exit 1; }
echo "busy port: reported before anything started"
