#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, with ASan and UBSan) in build-sanitize/ and
# runs each for SECONDS (default 10) from the checked-in corpus (tests/fuzz/corpus,
# plus the built-in intervention library for the library loader). New inputs go
# to a scratch directory, never into the checked-in corpus. A crash fails the
# run and leaves its input in build-sanitize/crashes/.
#   scripts/fuzz.sh            # a short run of each (test.sh does this)
#   scripts/fuzz.sh 3600       # the long run (docs/security.md)
set -euo pipefail
source "$(dirname "$0")/common.sh"
SECONDS_EACH="${1:-10}"
# The sanitizer build test.sh's stage 2 made (or makes here): one build for both.
FUZZ_DIR="$SANITIZE_DIR"
configure_sanitize_build
cmake --build "$FUZZ_DIR" -j2 --target fuzzers
mkdir -p "$FUZZ_DIR/crashes"
for fuzzer in fuzz_jwt fuzz_requests fuzz_scoring fuzz_page_token fuzz_library fuzz_fhir_import fuzz_http fuzz_jwks fuzz_fhir_search fuzz_proto_json; do
  scratch="$(mktemp -d)"
  seeds=("$ROOT/tests/fuzz/corpus/$fuzzer")
  [ "$fuzzer" = fuzz_library ] && seeds+=("$ROOT/services/planning/library")
  echo "== $fuzzer for ${SECONDS_EACH}s"
  if ! "$FUZZ_DIR/tests/fuzz/$fuzzer" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$FUZZ_DIR/crashes/$fuzzer-" "$scratch" "${seeds[@]}" >"$FUZZ_DIR/$fuzzer.log" 2>&1; then
    tail -n 40 "$FUZZ_DIR/$fuzzer.log" >&2
    rm -rf "$scratch"
    echo "$fuzzer failed; the input is in $FUZZ_DIR/crashes/" >&2
    exit 1
  fi
  grep -E "DONE" "$FUZZ_DIR/$fuzzer.log" | tail -n 1 || true
  rm -rf "$scratch"
done
