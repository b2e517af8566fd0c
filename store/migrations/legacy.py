"""Adopting a registry made before migrations: create_schema's last steps, then a stamp at the baseline.

A database that has the registry's tables but no `alembic_version` was made by create_schema. Any version of it
brought the tables to the baseline once this runs: the columns older ones lacked are added (the audit events already
stored are chained), and the append-only triggers and row-level security are put in place idempotently. Then
store.schema stamps it at the baseline revision and upgrades it like any other.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect

from store.audit import backfill_chain
from store.tenancy import DbRoles, install_row_level_security

__all__ = ["LEGACY_TABLES", "adopt_legacy_schema"]

LEGACY_TABLES = ("agents", "audit_events", "agent_data", "agent_health")

_SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{op.lower()} BEFORE {op} ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    for op in ("UPDATE", "DELETE")
]


def adopt_legacy_schema(conn: Connection, roles: DbRoles) -> None:
    """Bring a create_schema database to the baseline, in the caller's locked transaction; refuses a partial one."""
    inspector = inspect(conn)
    missing = [table for table in LEGACY_TABLES if not inspector.has_table(table)]
    if missing:
        raise RuntimeError(
            f"the registry database has tables but not {', '.join(missing)}: it is no lobstack registry this "
            "version can upgrade; point DATABASE_URL at an empty database or a lobstack registry"
        )
    _add_missing_columns(conn)
    if conn.dialect.name == "postgresql":
        install_row_level_security(conn, roles)
    else:
        for statement in _SQLITE_APPEND_ONLY:
            conn.exec_driver_sql(statement)


def _add_missing_columns(conn: Connection) -> None:
    """The columns newer code needed, added to tables an older version created (before any trigger or RLS exists)."""
    inspector = inspect(conn)
    if "hash" not in {c["name"] for c in inspector.get_columns("audit_events")}:
        conn.exec_driver_sql("ALTER TABLE audit_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
        conn.exec_driver_sql("ALTER TABLE audit_events ADD COLUMN prev_hash VARCHAR(64) NOT NULL DEFAULT ''")
        conn.exec_driver_sql("ALTER TABLE audit_events ADD COLUMN hash VARCHAR(64) NOT NULL DEFAULT ''")
        backfill_chain(conn)
        conn.exec_driver_sql(
            "CREATE UNIQUE INDEX IF NOT EXISTS uq_audit_events_account_seq ON audit_events (account_id, seq)"
        )
    if "unhealthy_threshold" not in {c["name"] for c in inspector.get_columns("agents")}:
        # Agents registered before: the threshold every spec had by default (and the fleet monitor's old fixed one).
        conn.exec_driver_sql("ALTER TABLE agents ADD COLUMN unhealthy_threshold INTEGER NOT NULL DEFAULT 3")
    if "account_id" not in {c["name"] for c in inspector.get_columns("agent_health")}:
        conn.exec_driver_sql("ALTER TABLE agent_health ADD COLUMN account_id VARCHAR(40) NOT NULL DEFAULT ''")
        conn.exec_driver_sql(
            "UPDATE agent_health SET account_id = "
            "COALESCE((SELECT account_id FROM agents WHERE agents.agent_id = agent_health.agent_id), '')"
        )
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_agent_health_account_id ON agent_health (account_id)")
