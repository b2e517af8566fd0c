#!/bin/sh
# Create Temporal's two databases and bring their schemas up to date (temporalio/admin-tools). Safe to re-run.
set -eu
until nc -z postgresql 5432; do sleep 1; done
for db in temporal temporal_visibility; do
    schema=temporal
    [ "$db" = temporal_visibility ] && schema=visibility
    sql="temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u $POSTGRES_USER --db $db"
    $sql create || true
    $sql setup-schema -v 0.0 || true # a no-op error when the schema table exists already
    $sql update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
