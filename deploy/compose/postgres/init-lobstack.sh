#!/bin/sh
# First start only (docker-entrypoint-initdb.d): the registry's own database and role, separate from Temporal's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v pw="$LOBSTACK_DB_PASSWORD" <<'SQL'
CREATE ROLE lobstack LOGIN PASSWORD :'pw';
CREATE DATABASE lobstack OWNER lobstack;
SQL
