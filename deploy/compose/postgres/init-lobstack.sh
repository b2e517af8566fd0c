#!/bin/sh
# First start only (docker-entrypoint-initdb.d runs it as the superuser POSTGRES_USER): the registry's own database
# and login, separate from Temporal's, and the two NOLOGIN roles its row-level security switches to (store/tenancy.py).
# The login is no superuser and cannot create roles, so everything the baseline migration (`lobstack db upgrade`) would otherwise need CREATEROLE or
# ADMIN OPTION for is done here: the roles exist, and the login is a member of both (the registry switches to them per
# transaction). `lobstack db upgrade` then owns the tables, grants on them and adds the policies, as the database's owner.
#
# Names, defaults in brackets; the worker must be given the same role names (it reads the same variables):
#   LOBSTACK_DB_NAME [lobstack]  LOBSTACK_DB_USER [lobstack]  LOBSTACK_DB_SERVICE_ROLE [lobstack_service]
#   LOBSTACK_DB_SYSTEM_ROLE [lobstack_system]; LOBSTACK_DB_PASSWORD is required.
# Idempotent: whatever exists already is kept (the membership grants are repeated).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v pw="$LOBSTACK_DB_PASSWORD" \
    -v db="${LOBSTACK_DB_NAME:-lobstack}" \
    -v login="${LOBSTACK_DB_USER:-lobstack}" \
    -v service="${LOBSTACK_DB_SERVICE_ROLE:-lobstack_service}" \
    -v system="${LOBSTACK_DB_SYSTEM_ROLE:-lobstack_system}" <<'SQL'
SELECT format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', role)
  FROM unnest(ARRAY[:'service', :'system']) AS role
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) \gexec
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD %L', :'login', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'login') \gexec
SELECT format('GRANT %I, %I TO %I', :'service', :'system', :'login') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'login')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SQL
