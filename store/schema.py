"""The registry's schema, managed by Alembic (store/migrations): upgrade it, read its revision, check it is current.

`upgrade_schema` is the only way the schema is created or changed (`lobstack db upgrade`, `lobstack dev`, the demo,
the tests). It runs every pending migration in one transaction under the schema lock, so workers or operators
upgrading together queue and the later ones find nothing to do. A database made before migrations (tables but no
`alembic_version`) is adopted first: brought to the baseline and stamped there (store.migrations.legacy).

Workers never change the schema: `require_current_schema` refuses a database behind the code's head revision, naming
the command to run. A database ahead of the code (a revision this code does not know, written by a newer release)
is accepted, so old workers keep running while a rolling upgrade replaces them; migrations are additive for that.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from store.engine import make_engine
from store.migrations.legacy import adopt_legacy_schema
from store.tenancy import SCHEMA_LOCK_ID, DbRoles

__all__ = [
    "BASELINE_REVISION",
    "SchemaOutOfDate",
    "head_revision",
    "is_behind",
    "require_current_schema",
    "schema_revision",
    "upgrade_database",
    "upgrade_schema",
]

BASELINE_REVISION = "0001"
UPGRADE_COMMAND = "lobstack db upgrade"
_VERSION_TABLE = "alembic_version"
_SCRIPTS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(RuntimeError):
    """The registry database is behind the code's revision (or has no schema): `lobstack db upgrade` fixes it."""

    def __init__(self, found: str | None, needed: str) -> None:
        self.found = found
        self.needed = needed
        where = "has no registry schema" if found is None else f"is at schema revision {found}"
        super().__init__(
            f"the registry database {where}, this code needs {needed}: run `{UPGRADE_COMMAND}` "
            "(with the same DATABASE_URL) first"
        )


def _config(conn: Connection | None = None, roles: DbRoles | None = None) -> Config:
    # No alembic.ini: the script directory ships inside the package, wherever it is installed.
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = conn
    config.attributes["roles"] = roles
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The revision this code's models correspond to."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - versions/ always holds the baseline
        raise RuntimeError("store/migrations/versions holds no revision")
    return head


def _revision(conn: Connection) -> str | None:
    # Read directly rather than through a MigrationContext, which logs its set-up at INFO in every worker start.
    if not inspect(conn).has_table(_VERSION_TABLE):
        return None
    found: str | None = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return found


def schema_revision(engine: Engine) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    with engine.connect() as conn:
        return _revision(conn)


def is_behind(found: str | None) -> bool:
    """Whether a database at revision `found` needs `lobstack db upgrade` for this code (a newer one does not)."""
    if found == head_revision():
        return False
    return found is None or found in {script.revision for script in _scripts().walk_revisions()}


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaOutOfDate unless the database is at the head revision, or at one newer than this code knows."""
    found = schema_revision(engine)
    if is_behind(found):
        raise SchemaOutOfDate(found, head_revision())


def upgrade_schema(engine: Engine, roles: DbRoles | None = None, revision: str = "head") -> tuple[str | None, str]:
    """Bring the database to `revision` (default: head); returns (revision before, revision after). Idempotent."""
    roles = roles or DbRoles.from_env()
    with engine.begin() as conn:
        # Two processes upgrading together would both see the same revision and run the same DDL: queue them.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        before = _revision(conn)
        config = _config(conn, roles)
        if before is None and inspect(conn).has_table("agents"):
            adopt_legacy_schema(conn, roles)
            command.stamp(config, BASELINE_REVISION)
        command.upgrade(config, revision)
        after = _revision(conn)
    if after is None:  # pragma: no cover - command.upgrade always records the revision it reached
        raise RuntimeError("the upgrade recorded no revision")
    return before, after


def upgrade_database(url: str, roles: DbRoles | None = None) -> tuple[str | None, str]:
    """upgrade_schema on a fresh engine for `url` (disposed after): what `lobstack db upgrade` runs."""
    engine = make_engine(url)
    try:
        return upgrade_schema(engine, roles)
    finally:
        engine.dispose()
