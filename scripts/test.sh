#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test, in three stages:
#  1. build/: ctest runs unit tests, integration tests (each starts its own
#     redis-server and PostgreSQL on free loopback ports and the services on
#     port 0), the fault suites (services as processes under a mixed load while
#     Redis, PostgreSQL and services fail; then on Redis Sentinel and a Patroni
#     cluster losing their primaries), the restore drill (pgBackRest, point-in-time
#     recovery through the API), the process tests (fatal-signal
#     traces, startup phases), the proto lint (buf STANDARD), the docker-compose
#     and Kubernetes checks, the README examples and the run.sh demo smoke test;
#  2. build-sanitize/ (clang): the unit and integration tests again, built with
#     AddressSanitizer and UndefinedBehaviorSanitizer (any report fails);
#  3. the libFuzzer targets, from the same build-sanitize/ (scripts/fuzz.sh), a
#     few seconds each;
#  4. the compose smoke (scripts/compose-smoke.sh): docker-compose.yml really
#     running under Docker with stage 1's binaries, the demo episode against it;
#     then again with the highly available profile (deploy/compose-ha.yml), both
#     primaries killed and the demo passing again.
# PHYSIO_TEST_STAGES picks stages (default "1 2 3 4"); arguments go to stage 1's ctest.
# At the end: each stage's wall time and the slowest tests.
set -euo pipefail
source "$(dirname "$0")/common.sh"

STAGES="${PHYSIO_TEST_STAGES:-1 2 3 4}"
TIMES=()
TEST_LOGS=()
stage_done() {  # name started_at
  TIMES+=("$(printf '%-44s %5d s' "$1" $((SECONDS - $2)))")
}
report() {
  # The report must never change the outcome: keep the script's status, and
  # read every line (awk, not head: head's early exit made sort die of SIGPIPE,
  # which pipefail and set -e turned into CI's exit code 141).
  local rc=$?
  set +e
  echo
  echo "== stage times"
  printf '  %s\n' "${TIMES[@]+"${TIMES[@]}"}"
  if [ "${#TEST_LOGS[@]}" -gt 0 ]; then
    echo "== slowest tests"
    # ctest's lines: "12/180 Test #34: name ......   Passed   12.34 sec"
    grep -HE "Test +#[0-9]+: " "${TEST_LOGS[@]}" |
      sed -E 's/.*ctest-stage([0-9])\.log:.*Test +#[0-9]+: ([^ ]+) .* ([0-9.]+) sec.*/\3 \2 (stage \1)/' |
      sort -rn | awk 'NR <= 10 { printf "  %8.1f s  %s %s %s\n", $1, $2, $3, $4 }'
  fi
  exit "$rc"
}
trap report EXIT

started=$SECONDS
install_packages "${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
# kubectl (for `kubectl kustomize`): Debian's kubernetes-client, unless a kubectl
# is already installed (another package may own /usr/bin/kubectl).
command -v kubectl >/dev/null 2>&1 || install_packages kubernetes-client
install_node_tools
stage_done "install" "$started"

if [[ " $STAGES " == *" 1 "* ]]; then
  started=$SECONDS
  build_all
  stage_done "1 build (build/)" "$started"
  started=$SECONDS
  TEST_LOGS+=("$BUILD_DIR/ctest-stage1.log")
  status=0
  (cd "$BUILD_DIR" && ctest --output-on-failure --timeout 300 -j2 "$@") 2>&1 | tee "$BUILD_DIR/ctest-stage1.log" ||
    status=$?
  stage_done "1 tests" "$started"
  [ "$status" -eq 0 ] || exit "$status"
fi

# One clang build with AddressSanitizer, UndefinedBehaviorSanitizer and the
# fuzzers' coverage serves stages 2 and 3.
SANITIZER_TESTS=(unit_tests use_case_tests foundation_test resilience_test episodes_test serving_test safety_test
  security_test tls_test http_test events_test session_loss_test identity_test)
if [[ " $STAGES " == *" 2 "* ]]; then
  started=$SECONDS
  echo "== building with AddressSanitizer and UndefinedBehaviorSanitizer (clang) in $SANITIZE_DIR"
  configure_sanitize_build
  # Only what stages 2 and 3 run (no tools, no benchmarks): the build is the slow part.
  cmake --build "$SANITIZE_DIR" -j2 --target "${SANITIZER_TESTS[@]}" fuzzers
  stage_done "2 build (build-sanitize/, also the fuzzers)" "$started"
  started=$SECONDS
  TEST_LOGS+=("$SANITIZE_DIR/ctest-stage2.log")
  # The scripted checks (README, run.sh, compose, lint, benchmarks), the fault
  # suites (single-node and highly available), the restore drill and the process tests (the sanitizers have their own fatal-signal handlers) ran in stage 1.
  status=0
  (cd "$SANITIZE_DIR" &&
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --output-on-failure --timeout 600 -j2 \
      -E "readme_examples|run_sh_demo_smoke|docker_compose|proto_lint|domain_bench|fault_harness|ha_faults|restore_drill|k8s_manifests|process_test") \
    2>&1 | tee "$SANITIZE_DIR/ctest-stage2.log" || status=$?
  stage_done "2 tests under the sanitizers" "$started"
  [ "$status" -eq 0 ] || exit "$status"
fi

if [[ " $STAGES " == *" 3 "* ]]; then
  started=$SECONDS
  "$ROOT/scripts/fuzz.sh" "${PHYSIO_FUZZ_SECONDS:-6}"
  stage_done "3 fuzzers" "$started"
fi

if [[ " $STAGES " == *" 4 "* ]]; then
  started=$SECONDS
  # Stage 1's build/ holds the binaries the images take (built here when stage 1 did not run).
  [ -x "$BUILD_DIR/services/devtools/physio-demo" ] || build_all OFF
  "$ROOT/scripts/compose-smoke.sh"
  stage_done "4 compose smoke (Docker)" "$started"
  started=$SECONDS
  # The highly available profile (deploy/compose-ha.yml): Sentinel and Patroni, both primaries killed.
  PHYSIO_COMPOSE_HA=1 "$ROOT/scripts/compose-smoke.sh"
  stage_done "4 compose smoke, HA profile" "$started"
fi
