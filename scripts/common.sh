# Shared by run.sh and test.sh: install what is missing, build.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${PHYSIO_BUILD_DIR:-$ROOT/build}"

# What building and running the services needs, from Debian bookworm (run.sh).
RUN_PACKAGES=(
  build-essential cmake pkg-config ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libhiredis-dev libspdlog-dev libpq-dev libdw-dev libcpp-jwt-dev libssl-dev nlohmann-json3-dev
  redis-server postgresql-15 postgresql-client-15
)
# What the tests add (test.sh): test frameworks, the compose check, the README's
# Python example, Node.js/npm for buf (proto lint), the FHIR validator and the
# browser test, and Debian's chromium, the browser it drives (headless); the
# highly available stores of ha_faults_test (Redis Sentinel, Patroni, etcd) and
# pgBackRest for the restore drill; iproute2 (ss) to read a listening socket's queue;
# prometheus for promtool, which checks and unit-tests the alerting rules (its daemon is not used).
# lld links the test binaries several times faster than GNU ld (CMakeLists.txt, PHYSIO_USE_LLD).
TEST_PACKAGES=(
  git openssl ccache iproute2 libgtest-dev libgmock-dev libbenchmark-dev clang lld libfuzzer-14-dev
  docker-compose python3-yaml python3-venv python3-grpcio python3-protobuf yamllint chromium
  redis-sentinel patroni etcd-server pgbackrest prometheus
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {  # package names...
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_node_tools() {
  # Skip Debian's nodejs/npm when a node toolchain is already there.
  command -v npm >/dev/null 2>&1 || install_packages nodejs npm
  if [ ! -x "$ROOT/scripts/node/node_modules/.bin/buf" ] ||
     [ ! -x "$ROOT/scripts/node/node_modules/.bin/protoc-gen-connect-es" ] ||
     [ ! -d "$ROOT/scripts/node/node_modules/puppeteer-core" ] ||
     [ ! -d "$ROOT/scripts/node/node_modules/@connectrpc/connect-web" ] ||
     [ ! -x "$ROOT/scripts/node/node_modules/.bin/esbuild" ] ||
     [ ! -d "$ROOT/scripts/node/node_modules/oidc-provider" ] ||
     [ ! -d "$ROOT/scripts/node/node_modules/standardwebhooks" ]; then
    echo "== installing node tools (buf, FHIR validator, Connect clients, esbuild, puppeteer-core, oidc-provider, standardwebhooks) from npm"
    # Exact versions are pinned in package.json; no lockfile, since npm writes one that
    # lacks other platforms' optional packages and then refuses it.
    (cd "$ROOT/scripts/node" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
  fi
}

# build_all [ON|OFF]: with OFF, only the services and the tools run.sh uses.
# ccache (Debian's) in front of the compilers when installed: a second build of
# the same sources on this machine (another checkout, a rebuilt directory) reuses objects.
compiler_launcher_args() {
  if command -v ccache >/dev/null 2>&1; then
    echo "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache"
  fi
}

build_all() {
  local with_tests="${1:-ON}"
  echo "== building in $BUILD_DIR"
  # shellcheck disable=SC2046
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHYSIO_BUILD_TESTS="$with_tests" \
    $(compiler_launcher_args) >/dev/null
  if [ "$with_tests" = "ON" ]; then
    cmake --build "$BUILD_DIR" -j2
  else
    cmake --build "$BUILD_DIR" -j2 --target physio-assessment physio-planning physio-progress \
      physio-probe physio-mint-token physio-demo
  fi
}

# The one sanitizer build (clang: AddressSanitizer, UndefinedBehaviorSanitizer and
# libFuzzer's coverage) that serves both test.sh's sanitizer stage and the fuzzers.
SANITIZE_DIR="${PHYSIO_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
configure_sanitize_build() {
  # shellcheck disable=SC2046
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$SANITIZE_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPHYSIO_SANITIZE=ON -DPHYSIO_FUZZ=ON -DPHYSIO_BUILD_TESTS=ON $(compiler_launcher_args) >/dev/null
}

# Whether something on this machine accepts connections on 127.0.0.1:PORT, or holds PORT as the
# local port of a connection (which a listener cannot bind either: within the kernel's ephemeral
# range, any outgoing connection may hold it). A closed connection's TIME-WAIT counts only when
# the port could have been an outgoing connection's, i.e. it lies in the ephemeral range and is
# not reserved (see reserve_ephemeral_ports): SO_REUSEADDR, which the services, Redis and
# PostgreSQL bind with, gets past the TIME-WAIT of connections a listener accepted (a previous
# run's), not that of an outgoing connection that had the port as its own.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  command -v ss >/dev/null 2>&1 || return 1
  local states="exclude time-wait"
  if ephemeral_unreserved "$1"; then states=""; fi
  # shellcheck disable=SC2086
  [ -n "$(ss -Htan $states "( sport = :$1 )" 2>/dev/null)" ]
}

# Keeps the kernel from handing PORTs (those within its ephemeral range) to outgoing connections,
# by adding them to net.ipv4.ip_local_reserved_ports (until reboot; a listener can still bind them).
# run.sh's default ports (50051-52053) lie in Linux's default ephemeral range (32768-60999), so a
# connection a service opens to Redis or PostgreSQL while the next service starts can be given,
# say, 51052 as its own port: that service then cannot listen there and the start fails (seen
# about once in tens of starts). Prints what it reserved, or why it could not (not root; a
# container whose /proc/sys is read-only), and never fails.
reserve_ephemeral_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports range low port wanted=()
  range="$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)" || return 0
  read -r low _ <<<"$range"
  for port in "$@"; do
    if ephemeral_unreserved "$port"; then wanted+=("$port"); fi
  done
  [ "${#wanted[@]}" -gt 0 ] || return 0
  local current joined
  current="$(cat "$file" 2>/dev/null)"
  joined="$(IFS=,; echo "${wanted[*]}")"
  if { echo "${current:+$current,}$joined" >"$file"; } 2>/dev/null; then
    echo "== reserved port(s) $joined from the kernel's ephemeral range (net.ipv4.ip_local_reserved_ports)"
  else
    echo "== note: port(s) $joined lie in the kernel's ephemeral range and could not be reserved" \
      "(not root, or /proc/sys read-only); a start can then fail with 'cannot listen on': run it again" \
      "or choose ports below $low (PHYSIO_*_PORT)"
  fi
}

# Whether the kernel may hand PORT to an outgoing connection as its own: it lies in the ephemeral
# range (net.ipv4.ip_local_port_range) and is not reserved from it.
ephemeral_unreserved() {
  local low high
  read -r low high < <(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo "32768 60999")
  [ "$1" -ge "$low" ] && [ "$1" -le "$high" ] && ! port_reserved "$1"
}

# The entries of net.ipv4.ip_local_reserved_ports (a list like "8080,50051-50053"), one "LOW HIGH"
# line each (a single port is its own range): the one reading of that list (smoke-run.sh's
# unreserve_ports reads it here too).
reserved_port_ranges() {
  local entry entries
  IFS=, read -ra entries <<<"$(cat /proc/sys/net/ipv4/ip_local_reserved_ports 2>/dev/null)"
  for entry in "${entries[@]}"; do
    [ -z "$entry" ] || echo "${entry%-*} ${entry#*-}"
  done
}

# Whether PORT is in net.ipv4.ip_local_reserved_ports.
port_reserved() {
  local low high
  while read -r low high; do
    [ "$1" -ge "$low" ] && [ "$1" -le "$high" ] && return 0
  done < <(reserved_port_ranges)
  return 1
}

# Postgres binaries are not on PATH on Debian.
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
