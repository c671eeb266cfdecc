#!/bin/sh
# Run once by the postgres image when it initialises an empty data directory
# (mounted at /docker-entrypoint-initdb.d): per service, an owner role that
# owns and migrates its schema and the role the service runs as (its own
# tables only, the audit table INSERT-only; grants made by the service's
# migrations). Passwords from PHYSIO_SERVICE_PG_PASSWORD (one for all in
# development; give each role its own secret in production).
set -eu
for svc in assessment planning progress; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
SET password_encryption = 'scram-sha-256';
CREATE ROLE physio_${svc}_owner LOGIN PASSWORD '${PHYSIO_SERVICE_PG_PASSWORD}';
CREATE ROLE physio_${svc} LOGIN PASSWORD '${PHYSIO_SERVICE_PG_PASSWORD}';
GRANT CONNECT, CREATE ON DATABASE ${POSTGRES_DB} TO physio_${svc}_owner;
GRANT CONNECT ON DATABASE ${POSTGRES_DB} TO physio_${svc};
SQL
done
# The audit read API (the assessment service's ListAuditEvents) reads the three
# services' audit tables as a member of this role; each service's migrations
# grant it SELECT on its audit table and nothing else.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE physio_audit_reader NOLOGIN;
GRANT physio_audit_reader TO physio_assessment;
SQL
