#!/usr/bin/env bash
# Certificates for running the services under mutual TLS (docker-compose.yml,
# and by hand); a real deployment issues them from its own PKI or cert-manager
# (docs/deploy.md). Writes into OUT_DIR (default deploy/certs, git-ignored):
#   ca.pem, ca.key                  the CA every certificate chains to (keep ca.key away from the services)
#   physio-<service>.pem/.key       each service's certificate, used both as its server certificate and as
#                                   its client certificate towards the others: CN physio-<service>, DNS SANs
#                                   physio-<service>, <service> (the compose name), physio-<service>-peers,
#                                   localhost and IP 127.0.0.1
#   physio-client.pem/.key          a caller that is not a service (the demo, grpcurl, an integration engine):
#                                   it may call over mutual TLS but never acts with the service role
# Usage: deploy/make-certs.sh [OUT_DIR] [DAYS]   (EC P-256; DAYS default 365). Existing files are kept
# unless FORCE=1. Keys are 0644 here because the containers (uid 10001) read them through a bind
# mount; this is for development machines, not for production keys.
set -euo pipefail
out="${1:-$(cd "$(dirname "$0")" && pwd)/certs}"
days="${2:-365}"
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
cd "$out"
if [ -f ca.pem ] && [ "${FORCE:-0}" != 1 ]; then
  echo "certificates already in $out (FORCE=1 to make new ones)"
  exit 0
fi
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days "$days" -subj "/CN=physio-dev-ca" 2>/dev/null
leaf() {  # name extra-sans
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=DNS:%s%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$1" "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days "$days" \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
for service in assessment planning progress; do
  leaf "physio-$service" ",DNS:$service,DNS:physio-$service-peers"
done
leaf physio-client ""
chmod 0644 ./*.pem physio-*.key
chmod 0600 ca.key
echo "certificates for mutual TLS written to $out"
