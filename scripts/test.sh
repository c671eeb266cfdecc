#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test, in three stages:
#  1. build/: ctest runs unit tests, integration tests (each starts its own
#     redis-server and PostgreSQL on free loopback ports and the services on
#     port 0), the fault suite (services as processes under a mixed load while
#     Redis, PostgreSQL and services fail), the proto lint (buf STANDARD), the
#     docker-compose and Kubernetes checks, the README examples and the run.sh
#     demo smoke test;
#  2. build-asan/: the unit and integration tests again, built with
#     AddressSanitizer and UndefinedBehaviorSanitizer (any report fails);
#  3. build-fuzz/: each libFuzzer target for a few seconds (scripts/fuzz.sh).
# PHYSIO_TEST_STAGES picks stages (default "1 2 3"); arguments go to stage 1's ctest.
set -euo pipefail
source "$(dirname "$0")/common.sh"

STAGES="${PHYSIO_TEST_STAGES:-1 2 3}"
install_packages "${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
# kubectl (for `kubectl kustomize`): Debian's kubernetes-client, unless a kubectl
# is already installed (another package may own /usr/bin/kubectl).
command -v kubectl >/dev/null 2>&1 || install_packages kubernetes-client
install_node_tools

if [[ " $STAGES " == *" 1 "* ]]; then
  build_all
  (cd "$BUILD_DIR" && ctest --output-on-failure --timeout 300 -j2 "$@")
fi

if [[ " $STAGES " == *" 2 "* ]]; then
  ASAN_DIR="${PHYSIO_ASAN_BUILD_DIR:-$ROOT/build-asan}"
  echo "== building with AddressSanitizer and UndefinedBehaviorSanitizer in $ASAN_DIR"
  cmake -S "$ROOT" -B "$ASAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHYSIO_SANITIZE=ON >/dev/null
  # Only what the tests below run (no tools, no benchmarks): the build is the slow part.
  cmake --build "$ASAN_DIR" -j2 --target unit_tests foundation_test resilience_test episodes_test serving_test \
    safety_test security_test tls_test http_test events_test session_loss_test use_case_tests
  # The scripted checks (README, run.sh, compose, lint, benchmarks) ran in stage 1.
  (cd "$ASAN_DIR" &&
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --output-on-failure --timeout 600 -j2 -E "readme_examples|run_sh_demo_smoke|docker_compose|proto_lint|domain_bench|fault_harness|k8s_manifests")
fi

if [[ " $STAGES " == *" 3 "* ]]; then
  "$ROOT/scripts/fuzz.sh" "${PHYSIO_FUZZ_SECONDS:-10}"
fi
