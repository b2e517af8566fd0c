"""Engines for the registry database: an SQLite file by default, PostgreSQL in production.

The schema is not made here: store.schema upgrades it through the migrations (`lobstack db upgrade`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

__all__ = ["default_database_url", "make_engine"]

# Several worker threads and processes write the same SQLite file: wait for the lock instead of failing at once.
SQLITE_BUSY_TIMEOUT_MS = 30_000

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
