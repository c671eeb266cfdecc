#!/usr/bin/env bash
# docker-compose.yml really running (issue 27): builds the images, `docker-compose up`, waits
# for every healthcheck, runs the demo episode against the published ports over mutual TLS,
# checks a Connect/JSON call and /metrics, that the services run as non-root on a read-only
# root filesystem, prints the image sizes, then `docker-compose down -v`.
#
# On a machine without a registry (this project's CI) the base images are made locally:
# `mmdebstrap --variant=minbase bookworm` from the machine's own Debian archive, imported as
# debian:bookworm and debian:bookworm-slim; Redis and PostgreSQL come from stand-in images built
# from Debian's packages (deploy/standins/) when redis:7-bookworm and postgres:15-bookworm cannot
# be pulled. The service images are deploy/Dockerfile's runtime image with the binaries of
# $PHYSIO_BUILD_DIR (deploy/Dockerfile.prebuilt), so nothing is compiled twice; set
# PHYSIO_COMPOSE_FROM_SOURCE=1 to build them from source with deploy/Dockerfile instead.
#
# It installs what it needs, starts a Docker daemon if none answers (and stops only that one),
# publishes only ports it found free, and touches only its own compose project
# (physio-smoke), the images it built and files under its own directory: the certificates and
# the JWT key pair are made there, never in deploy/certs or deploy/keys.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# PHYSIO_COMPOSE_HA=1: with the highly available profile (deploy/compose-ha.yml): Redis
# Sentinel and a Patroni cluster; after the demo, the Redis master and the Patroni leader
# are killed and the demo must pass again on the promoted ones.
HA="${PHYSIO_COMPOSE_HA:-0}"
if [ "$HA" = 1 ]; then
  PROJECT="${PHYSIO_COMPOSE_PROJECT:-physio-smoke-ha}"
else
  PROJECT="${PHYSIO_COMPOSE_PROJECT:-physio-smoke}"
fi
BIN="$BUILD_DIR/services"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/physio-compose-smoke.XXXXXX")"
DOCKERD_PID=""
COMPOSE_FILES=(-f "$ROOT/docker-compose.yml")
[ "${PHYSIO_COMPOSE_FROM_SOURCE:-0}" = 1 ] || COMPOSE_FILES+=(-f "$ROOT/deploy/compose-smoke.yml")
CONTAINERS=5
if [ "$HA" = 1 ]; then
  COMPOSE_FILES+=(-f "$ROOT/deploy/compose-ha.yml")
  CONTAINERS=14  # and two Redis replicas, three sentinels, etcd, three PostgreSQL nodes
fi
started=$SECONDS
say() { printf '== compose smoke (%3d s): %s\n' $((SECONDS - started)) "$*"; }

install_packages docker.io docker-compose mmdebstrap openssl curl
for tool in physio-demo physio-mint-token; do
  [ -x "$BIN/devtools/$tool" ] || { echo "compose-smoke: $BIN/devtools/$tool is missing; build first" >&2; exit 1; }
done

compose() { (cd "$ROOT" && docker-compose -p "$PROJECT" "${COMPOSE_FILES[@]}" "$@"); }

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ] && docker info >/dev/null 2>&1; then
    echo "== compose smoke failed; the containers' last log lines:"
    compose ps || true
    compose logs --no-color --tail=40 2>&1 | tail -n 200 || true
  fi
  if docker info >/dev/null 2>&1; then compose down -v --remove-orphans >/dev/null 2>&1 || true; fi
  rm -rf "$ROOT/deploy/.prebuilt" "$WORK"
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
  fi
  exit "$status"
}
trap cleanup EXIT

# A Docker daemon: the one running, or one of our own.
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (overlay2)"
  if [ "$(id -u)" -eq 0 ]; then
    dockerd --storage-driver=overlay2 >"$WORK/dockerd.log" 2>&1 &
  else
    sudo dockerd --storage-driver=overlay2 >"$WORK/dockerd.log" 2>&1 &  # sudo passes our SIGTERM on
  fi
  DOCKERD_PID=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { cat "$WORK/dockerd.log" >&2; echo "compose-smoke: dockerd did not start" >&2; exit 1; }
fi
# A project of ours left by an interrupted run goes first.
compose down -v --remove-orphans >/dev/null 2>&1 || true

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
pullable() { timeout "${PHYSIO_PULL_TIMEOUT_S:-30}" docker pull -q "$1" >/dev/null 2>&1; }

# Base images: pulled, or made from the machine's Debian archive.
if ! have_image debian:bookworm || ! have_image debian:bookworm-slim; then
  if ! { pullable debian:bookworm && pullable debian:bookworm-slim; }; then
    say "no registry: debian:bookworm from mmdebstrap (minbase)"
    sources=/etc/apt/sources.list.d/debian.sources
    [ -f "$sources" ] || sources=/etc/apt/sources.list
    mmdebstrap --variant=minbase --quiet bookworm "$WORK/bookworm.tar" "$sources"
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' --change 'LABEL org.physio.made-by=compose-smoke' \
      "$WORK/bookworm.tar" debian:bookworm >/dev/null
    docker tag debian:bookworm debian:bookworm-slim
    rm -f "$WORK/bookworm.tar"
  fi
fi

# Redis and PostgreSQL: the official images, or stand-ins from Debian's packages.
standin() {  # official-image name standin-dir variable
  if have_image "$1" || pullable "$1"; then
    export "$3=$1"
  else
    say "no $1: stand-in from Debian's packages (deploy/standins/$2)"
    (cd "$ROOT" && docker build -f "deploy/standins/$2/Dockerfile" --label org.physio.made-by=compose-smoke \
      -t "physio-standin/$1" .) >"$WORK/standin-$2.log" 2>&1 || { cat "$WORK/standin-$2.log" >&2; exit 1; }
    export "$3=physio-standin/$1"
  fi
}
standin redis:7-bookworm redis PHYSIO_REDIS_IMAGE
standin postgres:15-bookworm postgres PHYSIO_POSTGRES_IMAGE

# Certificates and the JWT key pair of this run only.
"$ROOT/deploy/make-certs.sh" "$WORK/certs" 2 >/dev/null
"$BIN/devtools/physio-mint-token" --generate-key="$WORK/keys" >/dev/null
chmod 0644 "$WORK/keys/jwt-public.pem"
export PHYSIO_CERTS_DIR="$WORK/certs" PHYSIO_KEYS_DIR="$WORK/keys"

# Published ports: free ones, below the kernel's ephemeral range.
ephemeral_start="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
declare -A PORT
taken=" "
for service in ASSESSMENT PLANNING PROGRESS; do
  for kind in GRPC HTTP METRICS; do
    while :; do
      candidate=$((20000 + RANDOM % (ephemeral_start - 20000)))
      [[ "$taken" == *" $candidate "* ]] && continue
      port_in_use "$candidate" || break
    done
    taken+="$candidate "
    PORT[$service.$kind]=$candidate
    export "PHYSIO_${service}_${kind}_HOST_PORT=$candidate"
  done
done

if [ "${PHYSIO_COMPOSE_FROM_SOURCE:-0}" != 1 ]; then
  mkdir -p "$ROOT/deploy/.prebuilt"
  for service in assessment planning progress; do cp "$BIN/$service/physio-$service" "$ROOT/deploy/.prebuilt/"; done
  cp "$BIN/devtools/physio-probe" "$ROOT/deploy/.prebuilt/"
  # As deploy/Dockerfile does: no debug sections; the symbol table stays for crash traces.
  strip --strip-debug "$ROOT"/deploy/.prebuilt/physio-*
fi
say "building the service images"
compose build >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
say "docker-compose up"
compose up -d >/dev/null 2>&1 || { compose up -d; exit 1; }

# Every container healthy (each has a healthcheck), within PHYSIO_COMPOSE_HEALTH_S.
deadline=$((SECONDS + ${PHYSIO_COMPOSE_HEALTH_S:-180}))
while :; do
  states="$(compose ps -q | xargs docker inspect -f '{{.Name}} {{.State.Status}} {{.State.Health.Status}}')"
  unhealthy="$(awk '$3 != "healthy"' <<<"$states")"
  [ -z "$unhealthy" ] && [ "$(wc -l <<<"$states")" -eq "$CONTAINERS" ] && break
  if grep -qE ' (exited|dead) ' <<<"$states" || [ "$SECONDS" -ge "$deadline" ]; then
    echo "$states" >&2
    echo "compose-smoke: not every container became healthy" >&2
    exit 1
  fi
  sleep 2
done
say "all $CONTAINERS containers healthy"

# The demo episode against the published ports, over mutual TLS with a client certificate.
demo() {
  "$BIN/devtools/physio-demo" --key="$WORK/keys/jwt-private.pem" \
    --assessment-addr="127.0.0.1:${PORT[ASSESSMENT.GRPC]}" --planning-addr="127.0.0.1:${PORT[PLANNING.GRPC]}" \
    --progress-addr="127.0.0.1:${PORT[PROGRESS.GRPC]}" --ca-file="$WORK/certs/ca.pem" \
    --cert-file="$WORK/certs/physio-client.pem" --key-file="$WORK/certs/physio-client.key" >"$WORK/demo.txt" 2>&1 &&
    grep -q "Progress summary" "$WORK/demo.txt"
}
demo || { cat "$WORK/demo.txt" >&2; echo "compose-smoke: the demo episode failed" >&2; exit 1; }
say "demo episode passed ($(grep -c 'home log ' "$WORK/demo.txt") home logs)"

if [ "$HA" = 1 ]; then
  # Both primaries lost at once: the sentinels promote a Redis replica, Patroni the synchronous
  # standby; the services follow (sentinel discovery, the PostgreSQL host list) with no restart.
  leader=""
  for node in pg-1 pg-2 pg-3; do
    if docker exec "$(compose ps -q "$node")" python3 -c \
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8008/primary', timeout=2)" 2>/dev/null; then
      leader=$node
    fi
  done
  [ -n "$leader" ] || { echo "compose-smoke: no Patroni leader answered" >&2; exit 1; }
  compose kill redis "$leader" >/dev/null 2>&1
  killed_at=$SECONDS
  say "killed the Redis master and the Patroni leader ($leader)"
  until demo; do
    if [ $((SECONDS - killed_at)) -ge "${PHYSIO_COMPOSE_FAILOVER_S:-120}" ]; then
      cat "$WORK/demo.txt" >&2
      echo "compose-smoke: the demo did not pass again after the failover" >&2
      exit 1
    fi
    sleep 2
  done
  say "demo episode passed again $((SECONDS - killed_at)) s after both primaries were killed"
  # The killed Redis master restarted after the failover: it must come back as a replica of the
  # master the sentinels promoted (deploy/redis/start-redis.sh), not as a master on the data it
  # had when it died (which the sentinels would only demote seconds later).
  compose start redis >/dev/null 2>&1
  redis_id="$(compose ps -q redis)"
  for _ in $(seq 1 120); do
    [ "$(docker exec "$redis_id" redis-cli ping 2>/dev/null)" = PONG ] && break
    sleep 0.5
  done
  role="$(docker exec "$redis_id" redis-cli info replication 2>/dev/null | tr -d '\r' | awk -F: '$1 == "role" {print $2}')"
  if [ "$role" != slave ]; then
    docker logs "$redis_id" 2>&1 | tail -n 20 >&2
    echo "compose-smoke: the restarted Redis master came back as '$role', not as a replica" >&2
    exit 1
  fi
  say "the restarted Redis master rejoined as a replica: $(docker logs "$redis_id" 2>&1 | grep -m1 'start-redis:')"
fi

# A Connect/JSON call on the HTTP port (TLS) and the metrics listener.
token="$("$BIN/devtools/physio-mint-token" --key="$WORK/keys/jwt-private.pem" --tenant=demo-clinic --sub=clin-smoke \
  --roles=clinician)"
answer="$(curl -sS --fail-with-body --cacert "$WORK/certs/ca.pem" \
  "https://127.0.0.1:${PORT[ASSESSMENT.HTTP]}/physio.assessment.v1.AssessmentService/ScoreInstrument" \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' \
  -d '{"instrument":"INSTRUMENT_NPRS","answers":[{"instrument":"INSTRUMENT_NPRS","itemId":"nprs","value":7}]}')"
grep -q '"score":7' <<<"$answer" || { echo "compose-smoke: unexpected Connect answer: $answer" >&2; exit 1; }
refused="$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$WORK/certs/ca.pem" \
  "https://127.0.0.1:${PORT[PLANNING.HTTP]}/physio.planning.v1.PlanningService/GetPlan" \
  -H 'Content-Type: application/json' -d '{"planId":"plan_x"}')"
[ "$refused" = 401 ] || { echo "compose-smoke: a call without a token answered $refused, not 401" >&2; exit 1; }
metrics="$(curl -sS --fail "http://127.0.0.1:${PORT[PROGRESS.METRICS]}/metrics")"
grep -q '^physio_' <<<"$metrics" || { echo "compose-smoke: /metrics has no physio_ series" >&2; exit 1; }
say "Connect/JSON call, refusal without a token and /metrics answered"

# Non-root on a read-only root filesystem.
for service in assessment planning progress; do
  id="$(compose ps -q "$service")"
  user="$(docker inspect -f '{{.Config.User}}' "$id")"
  readonly_root="$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$id")"
  [ "$user" = physio ] && [ "$readonly_root" = true ] ||
    { echo "compose-smoke: $service runs as '$user', read-only root $readonly_root" >&2; exit 1; }
  # Not even root inside the container can write there; /tmp (a tmpfs) is writable.
  if docker exec -u 0 "$id" sh -c 'touch /etc/physio-write-test' 2>/dev/null ||
     ! docker exec "$id" sh -c 'touch /tmp/physio-write-test'; then
    echo "compose-smoke: $service's root filesystem is not read-only, or /tmp is not writable" >&2
    exit 1
  fi
done
say "services run as physio (uid 10001) on read-only root filesystems"

echo "== image sizes"
for image in $(compose config | awk '/^ *image: /{print $2}') $(compose images -q 2>/dev/null | sort -u); do
  docker image inspect -f '{{index .RepoTags 0}} {{.Size}}' "$image" 2>/dev/null
done | sort -u | awk '{ printf "  %-40s %6.1f MB\n", $1, $2 / 1000000 }'
say "passed"
