"""Tenant isolation: every registry transaction runs for one account, or deliberately for the whole system.

PostgreSQL (the database enforces it)
    `agents`, `audit_events`, `agent_data` and `agent_health` (and `webhook_endpoints`, which its own migration 0003
    sets up the same way) have row-level security ENABLEd and FORCEd (so the
    tables' owner is subject to it too) with two permissive policies:

    - `lobstack_account`, TO PUBLIC: `account_id = nullif(current_setting('app.account_id', true), '')`, as USING
      and WITH CHECK: a session sees, updates and deletes only its account's rows, and cannot insert or move a row
      into another account. Unset (NULL or '') matches nothing.
    - `lobstack_system`, TO the system role only: `current_setting('app.account_id', true) = '*'`. The way through
      for the workers' fleet-wide paths (recording transitions for any account, the orphan sweep, fleet health, key
      rotation, audit verification). It takes both: membership of the system role AND an explicit '*', so a system
      session that forgot to say so still sees nothing, and '*' from any other role matches nothing.

    Two NOLOGIN roles, neither SUPERUSER nor BYPASSRLS, cluster-wide (default names `lobstack_service` and
    `lobstack_system`; `LOBSTACK_DB_SERVICE_ROLE` / `LOBSTACK_DB_SYSTEM_ROLE` rename them). They get SELECT, INSERT,
    UPDATE, DELETE on the account tables, and only SELECT, INSERT on `audit_events` (plus a trigger refusing UPDATE,
    DELETE and TRUNCATE there for everyone, the owner included). Every transaction of the registry starts with
    `set_config('role', <role>, true), set_config('app.account_id', <account or '*'>, true)` (both transaction-local,
    so nothing leaks to the next user of a pooled connection): `Registry` runs as the system role with '*',
    `Registry.for_account(a)` (an `AccountRegistry`) as the service role with `a`. The login in DATABASE_URL must be
    a member of the roles it switches to: a request-serving process should log in as a member of the service role
    only, so no bug or injected SQL in it can reach '*' (SET ROLE to the system role is refused, and the service
    role cannot DISABLE row security or SET row_security = off around it, as it owns no table). What RLS does not
    stop is a service session setting another account's id itself: the account boundary is the registry setting
    `app.account_id` from the authenticated account, and the database makes every query honour it.

    The baseline migration (store/migrations, `lobstack db upgrade`) creates the roles when missing, which needs
    CREATEROLE; a deployment may create them beforehand instead. `enable_row_level_security` is the idempotent repair
    of the same set-up, run when a registry made before migrations is adopted. Roles are never dropped by the service.

SQLite (the registry enforces it, in one place)
    SQLite has no roles or row security. `AccountRegistry` adds `account_id = <its account>` to every query it runs
    (`Scope.limit`), and refuses writes for another account; the system `Registry` is unrestricted. A connection
    opened on the file directly is not restricted at all: on SQLite isolation holds for code that goes through the
    registry, on PostgreSQL for any SQL run in a registry transaction.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.sql import ColumnElement

from contracts.spec import SpecError

__all__ = [
    "ACCOUNT_TABLES",
    "SYSTEM_ACCOUNT",
    "DbRoles",
    "Scope",
    "enable_row_level_security",
    "install_row_level_security",
    "scoped_connection",
]

SYSTEM_ACCOUNT = "*"
ACCOUNT_TABLES = ("agents", "audit_events", "agent_data", "agent_health")
_MUTABLE_TABLES = ("agents", "agent_data", "agent_health")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SETTING = "nullif(current_setting('app.account_id', true), '')"
# Any constant shared by every process; serialises schema set-up (store.schema's upgrade, enable_row_level_security).
SCHEMA_LOCK_ID = 0x10B57AC4


class _Filterable(Protocol):
    """What Select, Update and Delete share: `where` returns a statement of the same kind."""

    def where(self, *whereclause: ColumnElement[bool]) -> Self: ...


Q = TypeVar("Q", bound=_Filterable)


@dataclass(frozen=True)
class DbRoles:
    """The PostgreSQL roles the registry switches to: per-account service work, and fleet-wide system work."""

    service: str = "lobstack_service"
    system: str = "lobstack_system"

    def __post_init__(self) -> None:
        for name in (self.service, self.system):
            # They are spliced into DDL as identifiers: plain lower-case names only.
            if not _ROLE_NAME.fullmatch(name):
                raise ValueError(f"database role {name!r:.80} is not allowed; use 1-63 of a-z, 0-9, '_'")
        if self.service == self.system:
            raise ValueError("the service and system database roles must differ")

    @classmethod
    def from_env(cls) -> DbRoles:
        return cls(
            service=os.environ.get("LOBSTACK_DB_SERVICE_ROLE") or cls.service,
            system=os.environ.get("LOBSTACK_DB_SYSTEM_ROLE") or cls.system,
        )


@dataclass(frozen=True)
class Scope:
    """Whom a registry call runs for: one account, or the system (`account_id is None`)."""

    account_id: str | None = None

    @classmethod
    def of(cls, account_id: str) -> Scope:
        if not isinstance(account_id, str) or not account_id or account_id == SYSTEM_ACCOUNT or len(account_id) > 40:
            raise SpecError("account_id", "must be an account id of 1-40 characters")
        return cls(account_id)

    @property
    def setting(self) -> str:
        return SYSTEM_ACCOUNT if self.account_id is None else self.account_id

    def limit(self, query: Q, table: Table) -> Q:
        """The one place queries are restricted to the account (all SQLite has; PostgreSQL's RLS says the same)."""
        return query if self.account_id is None else query.where(table.c.account_id == self.account_id)


SYSTEM = Scope()


_SQLITE_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_SQLITE_WRITE_LOCKS_GUARD = threading.Lock()


def _sqlite_write_lock(engine: Engine) -> threading.RLock:
    """One lock per engine (re-entrant: a nested write in the same thread behaves as it did without it)."""
    with _SQLITE_WRITE_LOCKS_GUARD:
        lock = _SQLITE_WRITE_LOCKS.get(engine)
        if lock is None:
            lock = _SQLITE_WRITE_LOCKS[engine] = threading.RLock()
        return lock


@contextmanager
def scoped_connection(
    engine: Engine, scope: Scope, roles: DbRoles, *, write: bool = False, immediate: bool = False
) -> Iterator[Connection]:
    """A connection whose transaction runs for `scope`; committed at the end when `write`, else rolled back.

    PostgreSQL: the role and `app.account_id` are set transaction-locally first, so RLS applies to every statement.
    SQLite: `immediate` takes the write lock at once (BEGIN IMMEDIATE), for read-then-write transactions.
    """
    # SQLite allows one writer at a time; its busy handler makes the others sleep and retry with growing naps (a
    # contended write waited 100-400 ms for a lock held for 2 ms). This process's writers queue on a lock instead,
    # handed over the moment the previous commit ends; other processes still meet the busy timeout.
    lock = _sqlite_write_lock(engine) if write and engine.dialect.name == "sqlite" else contextlib.nullcontext()
    with lock, engine.begin() if write else engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            role = roles.system if scope.account_id is None else roles.service
            conn.execute(
                text("SELECT set_config('role', :role, true), set_config('app.account_id', :account, true)"),
                {"role": role, "account": scope.setting},
            )
        elif immediate:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def enable_row_level_security(engine: Engine, roles: DbRoles | None = None) -> None:
    """Idempotently set up the roles, grants, policies and append-only trigger; a no-op on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
        install_row_level_security(conn, roles or DbRoles.from_env())


def install_row_level_security(conn: Connection, roles: DbRoles) -> None:
    """enable_row_level_security inside the caller's transaction (which holds the schema lock)."""
    for role in (roles.service, roles.system):
        _ensure_role(conn, role)
    is_superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    if not is_superuser:
        # A superuser may SET ROLE to anything already; any other login needs membership to switch.
        for role in (roles.service, roles.system):
            if not conn.execute(text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}).scalar():
                conn.exec_driver_sql(f"GRANT {role} TO CURRENT_USER")
    both = f"{roles.service}, {roles.system}"
    conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(_MUTABLE_TABLES)} TO {both}")
    conn.exec_driver_sql(f"GRANT SELECT, INSERT ON audit_events TO {both}")
    conn.exec_driver_sql(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {both}")
    for table in ("audit_events", "agent_data"):
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
        if sequence:
            conn.exec_driver_sql(f"GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {both}")
    _append_only_trigger(conn)
    for table in ACCOUNT_TABLES:
        _protect(conn, table, roles)


def _ensure_role(conn: Connection, role: str) -> None:
    if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
        return
    # Roles are cluster-wide: a process setting up another database may create it at the same moment.
    conn.exec_driver_sql(
        f"""DO $$ BEGIN
            CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$"""
    )


def _append_only_trigger(conn: Connection) -> None:
    conn.exec_driver_sql(
        """CREATE OR REPLACE FUNCTION lobstack_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only: %% refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$"""
    )
    exists = conn.execute(
        text(
            "SELECT 1 FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass AND tgname = 'audit_events_append_only'"
        )
    ).first()
    if not exists:
        # Statement level: refused even when no row would match, and TRUNCATE has no rows at all.
        conn.exec_driver_sql(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION lobstack_audit_append_only()"
        )


def _protect(conn: Connection, table: str, roles: DbRoles) -> None:
    enabled, forced = conn.execute(
        text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = CAST(:t AS regclass)"),
        {"t": table},
    ).one()
    # ALTER TABLE takes an exclusive lock: only when something is missing, not at every worker start.
    if not enabled:
        conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    if not forced:
        conn.exec_driver_sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    present = set(
        conn.execute(
            text("SELECT policyname FROM pg_policies WHERE schemaname = current_schema() AND tablename = :t"),
            {"t": table},
        ).scalars()
    )
    if "lobstack_account" not in present:
        conn.exec_driver_sql(
            f"CREATE POLICY lobstack_account ON {table} TO PUBLIC "
            f"USING (account_id = {_SETTING}) WITH CHECK (account_id = {_SETTING})"
        )
    if "lobstack_system" not in present:
        system = f"current_setting('app.account_id', true) = '{SYSTEM_ACCOUNT}'"
        conn.exec_driver_sql(
            f"CREATE POLICY lobstack_system ON {table} TO {roles.system} USING ({system}) WITH CHECK ({system})"
        )
