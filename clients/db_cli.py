"""Schema commands of `lobstack`: upgrade the registry database to the code's revision, and show its revision.

`add_db_commands(subparsers)` adds them to the CLI's parser. Both use `--database-url`, else `DATABASE_URL`, else the
default SQLite file (store.default_database_url), and never contact Temporal or Vault. Run `db upgrade` before
starting workers of a new release: workers refuse a database behind their code (exit 2, naming this command).

    lobstack db upgrade [--database-url URL]   make or upgrade the schema (idempotent; safe to run from many hosts)
    lobstack db current [--database-url URL]   the database's revision and the code's; exit 1 when behind
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_db_commands"]

EXIT_OK = 0
EXIT_BEHIND = 1


def _engine(args: argparse.Namespace) -> Any:
    from clients.cli_common import EXIT_USAGE, CommandFailed
    from store import default_database_url, make_engine

    try:
        return make_engine(args.database_url or default_database_url())
    except ValueError as err:
        if not str(err).startswith("DATABASE_URL:"):
            raise
        # The URL is never echoed: it may hold a password.
        raise CommandFailed(f"{err} (check --database-url or DATABASE_URL)", EXIT_USAGE) from None


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from store import upgrade_schema

    engine = _engine(args)
    try:
        before, after = upgrade_schema(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"registry schema already at revision {after}")
    else:
        print(f"registry schema upgraded from {before or 'nothing'} to revision {after}")
    return EXIT_OK


def cmd_db_current(args: argparse.Namespace) -> int:
    from store.schema import head_revision, is_behind, schema_revision

    engine = _engine(args)
    try:
        found = schema_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    print(f"database: {found or 'no schema (run `lobstack db upgrade`)'}")
    print(f"code:     {head}")
    if found is not None and found != head and not is_behind(found):
        print("the database is newer than this code (a later release upgraded it)")
    return EXIT_BEHIND if is_behind(found) else EXIT_OK


def add_db_commands(subparsers: Any) -> None:
    """Add `db upgrade` and `db current` to the `lobstack` subcommands."""
    db = subparsers.add_parser("db", help="the registry database's schema: upgrade it, show its revision")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, func, text in (
        ("upgrade", cmd_db_upgrade, "create or upgrade the schema to this code's revision (run before the workers)"),
        ("current", cmd_db_current, "show the database's revision and this code's; exit 1 when the database is behind"),
    ):
        command = db_sub.add_parser(name, help=text)
        command.add_argument("--database-url", help="registry database (default: DATABASE_URL, else the SQLite file)")
        command.set_defaults(func=func)
