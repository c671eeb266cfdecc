# Shared by run.sh and test.sh: install what is missing, build.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${PHYSIO_BUILD_DIR:-$ROOT/build}"

# Everything the build, the services, the tests and the demo need, from Debian bookworm.
APT_PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libhiredis-dev libspdlog-dev libpq-dev libcpp-jwt-dev libssl-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  redis-server postgresql-15 postgresql-client-15
  docker-compose
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  # Node.js and npm fetch buf (proto lint); skip them when a node toolchain is already there.
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_node_tools() {
  if [ ! -x "$ROOT/scripts/node/node_modules/.bin/buf" ]; then
    echo "== installing node tools (buf) from npm"
    # Exact versions are pinned in package.json; no lockfile, since npm writes one that
    # lacks other platforms' optional packages and then refuses it.
    (cd "$ROOT/scripts/node" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
  fi
}

build_all() {
  echo "== building in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j2
}

# Postgres binaries are not on PATH on Debian.
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
