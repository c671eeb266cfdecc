#!/usr/bin/env bash
# GetActivePlan with a token from a real OpenID provider against the same calls
# with our own PEM-signed token, in one run (docs/benchmarks.md, issue 28):
# starts oidc-provider (scripts/node/oidc-test-provider.mjs) on loopback, run.sh's
# stack trusting it by discovery as well as the PEM key, then physio-bench with a
# clinician's access token from the provider's authorization-code flow.
#   scripts/bench-oidc.sh [concurrency levels, default 32,512] [seconds, default 5]
# Uses the existing build (run scripts/run.sh or test.sh once first).
set -euo pipefail
source "$(dirname "$0")/common.sh"
LEVELS="${1:-32,512}"
SECONDS_EACH="${2:-5}"
WORK="$(mktemp -d)"
cleanup() {
  set +e
  if [ -n "${STACK_PID:-}" ]; then kill "$STACK_PID" 2>/dev/null; wait "$STACK_PID" 2>/dev/null; fi
  if [ -n "${PROVIDER_PID:-}" ]; then kill "$PROVIDER_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
install_node_tools
node "$ROOT/scripts/node/oidc-test-provider.mjs" >"$WORK/provider.log" 2>&1 &
PROVIDER_PID=$!
for _ in $(seq 100); do grep -q '^READY' "$WORK/provider.log" && break; sleep 0.1; done
ISSUER="$(sed -n 's/^READY issuer=\([^ ]*\) .*/\1/p' "$WORK/provider.log")"
CONTROL="$(sed -n 's/^READY .* control=\(.*\)$/\1/p' "$WORK/provider.log")"
[ -n "$ISSUER" ] || { cat "$WORK/provider.log" >&2; exit 1; }
cat >"$WORK/issuers.json" <<JSON
{"issuers": [{"issuer": "$ISSUER", "keys": {"discovery": true}, "allow_http": true,
  "audiences": ["physio-backend"], "algorithms": ["RS256", "ES256"], "tenant_claim": "tenant",
  "claims": {"roles": "realm_access.roles", "role_values": {"physio-clinician": ["clinician"]},
             "clinics": "https://physio.example/clinics"}}]}
JSON
PHYSIO_OIDC_ISSUERS_FILE="$WORK/issuers.json" PHYSIO_SKIP_BUILD=1 PHYSIO_SKIP_DEMO=1 \
  "$ROOT/scripts/run.sh" >"$WORK/stack.log" 2>&1 &
STACK_PID=$!
for _ in $(seq 600); do grep -q "Press Ctrl-C" "$WORK/stack.log" && break; sleep 0.2; done
grep -q "Press Ctrl-C" "$WORK/stack.log" || { tail -n 30 "$WORK/stack.log" >&2; exit 1; }
TOKEN="$(curl -fsS "$CONTROL/token?user=clinician-north")"
"$BUILD_DIR/services/devtools/physio-bench" --key="$ROOT/.run/keys/jwt-private.pem" --tenant=chain-a \
  --compare-token="$TOKEN" --only=GetActivePlan --concurrency="$LEVELS" --seconds="$SECONDS_EACH"
