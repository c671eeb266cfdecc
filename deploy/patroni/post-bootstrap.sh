#!/bin/sh
# Patroni's post_bootstrap (deploy/patroni/patroni.yml), run once on the node that
# initialised the cluster: the physio database, then the same roles the
# single-node PostgreSQL gets (deploy/postgres-init/10-physio-roles.sh).
set -eu
psql -v ON_ERROR_STOP=1 --host /var/run/postgresql --username postgres --dbname postgres -c "CREATE DATABASE physio"
POSTGRES_USER=postgres POSTGRES_DB=physio PGHOST=/var/run/postgresql exec sh /docker-entrypoint-initdb.d/10-physio-roles.sh
