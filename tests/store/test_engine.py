from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from store import default_database_url, head_revision, make_engine, upgrade_schema
from tests.store.helpers import run_together


def test_sqlite_engine_creates_the_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "lobstack.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert path.parent.is_dir()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgres://postgres@127.0.0.1:5432/test",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    engine = make_engine(url)
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.pool._pre_ping
    engine.dispose()


@pytest.mark.parametrize("url", ["mysql://root@localhost/x", "sqlite://", "sqlite:///:memory:"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        make_engine(url)


def test_default_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://db.internal/lobstack")
    assert default_database_url() == "postgresql://db.internal/lobstack"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("LOBSTACK_HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/lobstack.db"
    monkeypatch.delenv("LOBSTACK_HOME")
    assert default_database_url() == f"sqlite:///{Path.home()}/.lobstack/lobstack.db"


def test_the_schema_upgrade_is_idempotent_and_safe_to_race(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        results = run_together(4, lambda _i: upgrade_schema(engine))
        # Exactly one of the racers made the schema; the others queued on the lock and found it done.
        head = head_revision()
        assert sorted(results, key=str) == [(head, head)] * 3 + [(None, head)]
        assert upgrade_schema(engine) == (head_revision(), head_revision())
        tables = set(inspect(engine).get_table_names())
        assert {"agents", "audit_events", "alembic_version"} <= tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 0
    finally:
        engine.dispose()
