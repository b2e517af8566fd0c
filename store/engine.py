"""Engines for the registry database: an SQLite file by default, PostgreSQL in production."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlmodel import SQLModel

from store.audit import backfill_chain
from store.tables import AGENT_DATA, AGENT_HEALTH, AGENTS, AUDIT_EVENTS
from store.tenancy import SCHEMA_LOCK_ID, DbRoles, install_row_level_security

__all__ = ["create_schema", "default_database_url", "make_engine"]

# Several worker threads and processes write the same SQLite file: wait for the lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_MS = 30_000

# SQLite has no statement-level triggers or TRUNCATE; row triggers refuse the rest (PostgreSQL's: store.tenancy).
_SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER IF NOT EXISTS audit_events_no_{op.lower()} BEFORE {op} ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
    for op in ("UPDATE", "DELETE")
]

_POSTGRES_DRIVERS = ("postgres", "postgresql", "postgresql+psycopg")


def default_database_url() -> str:
    """`DATABASE_URL`, else an SQLite file under `LOBSTACK_HOME` (default `~/.lobstack`)."""
    if url := os.environ.get("DATABASE_URL"):
        return url
    home = Path(os.environ.get("LOBSTACK_HOME") or "~/.lobstack").expanduser()
    return f"sqlite:///{home / 'lobstack.db'}"


def make_engine(url: str) -> Engine:
    """An engine for `sqlite:///path`, `postgresql://...` or `postgresql+psycopg://...`.

    Parameters are never rendered into error messages or logs (`hide_parameters`): those messages can reach workflow
    history.
    """
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return _sqlite_engine(parsed)
    if parsed.drivername in _POSTGRES_DRIVERS:
        # psycopg 3 is the driver we ship; a bare postgresql:// would otherwise pick psycopg2.
        return create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True, hide_parameters=True)
    raise ValueError(f"DATABASE_URL: scheme {parsed.drivername!r} is not supported; use sqlite:/// or postgresql://")


def _sqlite_engine(url: URL) -> Engine:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        # Each pooled connection would get its own empty in-memory database.
        raise ValueError("DATABASE_URL: SQLite needs a file path, e.g. sqlite:////var/lib/lobstack/lobstack.db")
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        # Pooled connections move between the worker's threads; each is used by one thread at a time.
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL briefly needs the lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            # WAL: readers never block the writer and vice versa.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return engine


def create_schema(engine: Engine, roles: DbRoles | None = None) -> None:
    """Create the registry tables if they are missing; safe to call from every worker at start-up.

    Also upgrades a database made before the audit chain and `agent_health.account_id` (adds the columns, chains the
    events already stored), makes `audit_events` append-only, and on PostgreSQL enables row-level security
    (store.tenancy). Only additive changes; anything else will come with migrations (Alembic) later.
    """
    tables = [AGENTS, AUDIT_EVENTS, AGENT_DATA, AGENT_HEALTH]
    with engine.begin() as conn:
        # Two processes starting together would both see "no table" and one CREATE would fail; take a lock first.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        SQLModel.metadata.create_all(conn, tables=tables)
        _upgrade(conn)
        if conn.dialect.name == "postgresql":
            install_row_level_security(conn, roles or DbRoles.from_env())
        else:
            for statement in _SQLITE_APPEND_ONLY:
                conn.exec_driver_sql(statement)


def _upgrade(conn: Connection) -> None:
    """Add the columns newer code needs to tables an older version created (before any trigger or RLS exists)."""
    inspector = inspect(conn)
    audit_columns = {c["name"] for c in inspector.get_columns("audit_events")}
    if "hash" not in audit_columns:
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
