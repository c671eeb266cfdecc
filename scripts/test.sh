#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test with ctest: unit tests,
# integration tests (each starts its own redis-server and PostgreSQL on free
# loopback ports and the services on port 0), the proto lint (buf STANDARD),
# the docker-compose config check and the run.sh demo smoke test.
set -euo pipefail
source "$(dirname "$0")/common.sh"

install_packages "${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
install_node_tools
build_all
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 300 -j2 "$@"
