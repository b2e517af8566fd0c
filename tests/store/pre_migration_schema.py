"""The registry as it was before migrations, frozen: what `create_schema` made (the code before issue 21).

Its own MetaData, not store.tables: those models change with every migration, this must not. Used to build the
databases operators already have, which `lobstack db upgrade` adopts (store.migrations.legacy).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from store.tenancy import SCHEMA_LOCK_ID, DbRoles, install_row_level_security

__all__ = ["create_pre_migration_schema"]

_META = MetaData()


def _when() -> DateTime:
    return DateTime(timezone=True)


Table(
    "agents",
    _META,
    Column("agent_id", String(40), primary_key=True),
    Column("account_id", String(40), nullable=False, index=True),
    Column("name", String(63), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("region", String(32), nullable=False),
    Column("size", String(32), nullable=False),
    Column("state", String(32), nullable=False, index=True),
    Column("vm_id", String(128), nullable=False),
    Column("address", String(255), nullable=False),
    Column("health", String(32), nullable=False),
    Column("created_at", _when(), nullable=False),
    Column("updated_at", _when(), nullable=False),
    Column("last_error", String(500), nullable=False),
    Column("unhealthy_threshold", Integer, nullable=False),
)
Table(
    "audit_events",
    _META,
    Column("id", Integer, primary_key=True),
    Column("event_key", String(200), nullable=False, unique=True),
    Column("at", _when(), nullable=False),
    Column("account_id", String(40), nullable=False, index=True),
    Column("agent_id", String(40), nullable=False, index=True),
    Column("action", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", String(1000), nullable=False),
    Column("details", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("uq_audit_events_account_seq", "account_id", "seq", unique=True),
)
Table(
    "agent_data",
    _META,
    Column("id", Integer, primary_key=True),
    Column("agent_id", String(40), nullable=False, index=True),
    Column("account_id", String(40), nullable=False, index=True),
    Column("name", String(63), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("key_version", Integer, nullable=False, index=True),
    Column("updated_at", _when(), nullable=False),
    UniqueConstraint("agent_id", "name", name="uq_agent_data_agent_name"),
)
Table(
    "agent_health",
    _META,
    Column("agent_id", String(40), primary_key=True),
    Column("account_id", String(40), nullable=False, index=True),
    Column("healthy", Boolean, nullable=False),
    Column("status", String(32), nullable=False),
    Column("reason", String(300), nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("address", String(255), nullable=False),
    Column("checked_at", _when(), nullable=False),
)


def create_pre_migration_schema(engine: Engine, roles: DbRoles) -> None:
    """create_schema as it was: create_all, then the append-only triggers and (PostgreSQL) row-level security."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
        _META.create_all(conn)
        if conn.dialect.name == "postgresql":
            install_row_level_security(conn, roles)
        else:
            for op in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER audit_events_no_{op.lower()} BEFORE {op} ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
                )
