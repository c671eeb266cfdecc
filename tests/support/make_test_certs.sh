#!/usr/bin/env bash
# Throwaway certificates for the mutual-TLS tests (and for trying TLS by hand):
#   ca.pem            the CA every service and client certificate chains to
#   <name>.pem/.key   for physio-assessment, physio-planning, physio-progress
#                     (services) and clinic-gateway (a caller that is not a service);
#                     each names itself in CN and DNS SAN, plus localhost and 127.0.0.1
#   rogue-ca.pem, rogue-client.pem/.key   a client signed by a CA nobody trusts
# Usage: make_test_certs.sh OUT_DIR   (EC P-256 keys, valid 2 days)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
mkdir -p "$out"
cd "$out"
umask 077
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

ca() {  # name
  openssl req -x509 "${ec[@]}" -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1" 2>/dev/null
}
leaf() {  # ca name
  openssl req "${ec[@]}" -keyout "$2.key" -out "$2.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$2.ext"
  openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" -CAcreateserial -out "$2.pem" -days 2 \
    -extfile "$2.ext" 2>/dev/null
  rm -f "$2.csr" "$2.ext"
}

# The CA and the services' certificates are the ones deploy/make-certs.sh makes for compose and
# Kubernetes, so the mutual-TLS suite proves those work; the rest are the tests' own.
"$here/../../deploy/make-certs.sh" "$PWD" 2 >/dev/null
leaf ca clinic-gateway
ca rogue-ca
leaf rogue-ca rogue-client
chmod 0644 ./*.pem
