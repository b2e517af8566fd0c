"""The registry: current agents and their audit trail, written together so neither can drift from the other.

`Registry` is the system-wide view the workers use (any account); `Registry.for_account(a)` is an `AccountRegistry`
limited to account `a`, by row-level security on PostgreSQL and by the registry itself on both databases (see
store.tenancy). Audit events form a hash chain per account (see store.audit): `verify_audit`, `export_audit`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, RowMapping, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from contracts.models import AgentState, Transition
from contracts.spec import SpecError
from store.audit import VerifyReport, append_event, chain_query, export_row, iter_rows, verify_rows
from store.engine import make_engine
from store.maintenance import MaintenanceStore
from store.records import AgentRecord, AuditRecord
from store.schema import require_current_schema
from store.tables import AGENTS, AUDIT_EVENTS, LAST_ERROR_MAX, REASON_MAX
from store.tenancy import SYSTEM, DbRoles, Scope, scoped_connection
from store.validation import validate_transition

__all__ = ["AccountRegistry", "Registry"]

_AGENTS = AGENTS
_EVENTS = AUDIT_EVENTS
# Carried by a transition only when known; an empty value means "unchanged", not "cleared".
_KEPT_UNLESS_GIVEN = ("name", "provider", "region", "size", "vm_id", "address", "health", "unhealthy_threshold")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refused_by_row_security(exc: sa_exc.DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "42501"


class Registry(MaintenanceStore):
    """Reads and writes the `agents` and `audit_events` tables. Thread-safe: every call uses its own connection.

    Runs as the system (every account); `for_account` gives the view of one account.
    """

    def __init__(self, *, engine: Engine, roles: DbRoles | None = None) -> None:
        if engine.dialect.name == "postgresql":
            self._insert: Any = postgresql.insert
        elif engine.dialect.name == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"database dialect {engine.dialect.name!r} is not supported; use SQLite or PostgreSQL")
        self.engine = engine
        self.roles = roles or DbRoles.from_env()
        self._scope: Scope = SYSTEM
        self._owns_engine = False

    @classmethod
    def from_url(cls, url: str, *, roles: DbRoles | None = None) -> Self:
        """A registry on its own engine; `close()` disposes the engine.

        Raises store.schema.SchemaOutOfDate when the database is behind the code (`lobstack db upgrade` makes and
        upgrades the schema; a registry never changes it).
        """
        engine = make_engine(url)
        roles = roles or DbRoles.from_env()
        try:
            require_current_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        registry = cls(engine=engine, roles=roles)
        registry._owns_engine = True
        return registry

    def for_account(self, account_id: str) -> AccountRegistry:
        """The registry of one account, on the same engine: it reads and writes that account's rows only."""
        scope = Scope.of(account_id)
        if self._scope.account_id not in (None, scope.account_id):
            raise SpecError("account_id", "an account's registry cannot open another account's")
        return AccountRegistry(engine=self.engine, roles=self.roles, account_id=account_id)

    def _connect(self, *, write: bool = False, immediate: bool = False) -> AbstractContextManager[Connection]:
        """Every statement of the registry runs in one of these (the tenant context; see store.tenancy)."""
        return scoped_connection(self.engine, self._scope, self.roles, write=write, immediate=immediate)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # --- writes ----------------------------------------------------------------------------------------------------

    def record(
        self,
        t: Transition,
        *,
        before_write: Callable[[Connection], None] | None = None,
        after_write: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Upsert the agent row and append the audit event in one transaction; False if `t.event_key` was seen before.

        `before_write` runs first in that transaction (an admission's quota check, store.account_limits): what it
        reads cannot change before the write commits, and what it raises leaves nothing written. `after_write` runs
        after the agent row is written, in the same transaction (the admitted agent's price).
        Raises SpecError (a ValueError) naming the field for a bad transition, and for an agent id already registered
        under another account.
        """
        validate_transition(t)
        if self._scope.account_id not in (None, t.account_id):
            raise SpecError("account_id", "is not the account of this registry")
        at = (t.at or datetime.now(UTC)).astimezone(UTC)
        state = AgentState(t.state).value
        event = {
            "event_key": t.event_key,
            "at": at,
            "account_id": t.account_id,
            "agent_id": t.agent_id,
            "action": t.action,
            "state": state,
            "actor": t.actor,
            "reason": _clip(t.reason, REASON_MAX),
            "details": dict(t.details),
        }

        given = {name: getattr(t, name) for name in _KEPT_UNLESS_GIVEN if getattr(t, name)}
        last_error = _clip(t.reason, LAST_ERROR_MAX) if state == AgentState.FAILED else None
        changes: dict[str, object] = {**given, "state": state, "updated_at": at}
        if last_error is not None:
            changes["last_error"] = last_error
        first_sight = {"agent_id": t.agent_id, "account_id": t.account_id, "created_at": at, "health": "unknown"}
        insert_agent = self._insert(_AGENTS).values({**first_sight, **changes})
        upsert_agent = insert_agent.on_conflict_do_update(
            index_elements=[_AGENTS.c.agent_id],
            set_=changes,
            # An agent id never moves between accounts; no row comes back when it would.
            where=_AGENTS.c.account_id == insert_agent.excluded.account_id,
        ).returning(_AGENTS.c.agent_id)

        moved = SpecError("account_id", f"agent {t.agent_id!r} is registered under another account")
        # SQLite: BEGIN IMMEDIATE, as the chain's head is read before the event is written.
        with self._connect(write=True, immediate=True) as conn:
            if before_write is not None:
                before_write(conn)
            if append_event(conn, self._insert, event) is None:
                return False
            if t.audit_only:
                return True
            try:
                upserted = conn.execute(upsert_agent).scalar_one_or_none()
            except sa_exc.ProgrammingError as exc:
                # An account's session may not even see the other account's row it collides with (RLS).
                if _refused_by_row_security(exc):
                    raise moved from None
                raise
            if upserted is None:
                raise moved
            if after_write is not None:
                after_write(conn)
        return True

    # --- reads -----------------------------------------------------------------------------------------------------

    def get(self, agent_id: str) -> AgentRecord | None:
        query = self._scope.limit(select(_AGENTS).where(_AGENTS.c.agent_id == agent_id), _AGENTS)
        with self._connect() as conn:
            row = conn.execute(query).mappings().one_or_none()
        return None if row is None else _agent(row)

    def exists(self, agent_id: str) -> bool:
        query = self._scope.limit(select(_AGENTS.c.agent_id).where(_AGENTS.c.agent_id == agent_id), _AGENTS)
        with self._connect() as conn:
            found = conn.execute(query).first()
        return found is not None

    def list_agents(self, account_id: str | None = None, states: Collection[str] | None = None) -> list[AgentRecord]:
        """Agents, oldest first; filtered by account and by state when given (an empty `states` matches nothing)."""
        query = select(_AGENTS).order_by(_AGENTS.c.created_at, _AGENTS.c.agent_id)
        if account_id is not None:
            query = query.where(_AGENTS.c.account_id == account_id)
        if states is not None:
            query = query.where(_AGENTS.c.state.in_([AgentState(s).value for s in states]))
        with self._connect() as conn:
            return [_agent(row) for row in conn.execute(self._scope.limit(query, _AGENTS)).mappings()]

    def events(self, agent_id: str | None = None, account_id: str | None = None) -> list[AuditRecord]:
        """Audit events in insertion order, filtered by agent and by account when given."""
        conditions: list[ColumnElement[bool]] = []
        if agent_id is not None:
            conditions.append(_EVENTS.c.agent_id == agent_id)
        if account_id is not None:
            conditions.append(_EVENTS.c.account_id == account_id)
        query = self._scope.limit(select(_EVENTS).where(*conditions).order_by(_EVENTS.c.id), _EVENTS)
        with self._connect() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]

    # --- audit chain -----------------------------------------------------------------------------------------------

    def verify_audit(self, account_id: str | None = None) -> VerifyReport:
        """Walk every account's chain (or one account's) and report the first broken link, or ok with counts."""
        query = self._scope.limit(chain_query(account_id), _EVENTS)
        with self._connect() as conn:
            return verify_rows(iter_rows(conn, query))

    def export_audit(self, account_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Events as JSON-ready dicts in chain order (by account, then seq); store.audit.verify_rows checks them.

        A generator holding one connection (one snapshot) until it is exhausted or closed.
        """
        query = self._scope.limit(chain_query(account_id), _EVENTS)
        with self._connect() as conn:
            for row in iter_rows(conn, query):
                yield export_row(row)


class AccountRegistry(Registry):
    """One account's registry: every query is limited to `account_id` and writes for another account are refused.

    On PostgreSQL its transactions run as the service role with `app.account_id` set, so row-level security holds
    whatever the SQL; on SQLite the limit added to each query (store.tenancy.Scope.limit) is the whole guard.
    """

    def __init__(self, *, engine: Engine, roles: DbRoles | None = None, account_id: str) -> None:
        super().__init__(engine=engine, roles=roles)
        self._scope = Scope.of(account_id)

    @property
    def account_id(self) -> str:
        return str(self._scope.account_id)


def _agent(row: RowMapping) -> AgentRecord:
    return AgentRecord(**{**row, "state": AgentState(row["state"])})


def _event(row: RowMapping) -> AuditRecord:
    return AuditRecord(**{**row, "state": AgentState(row["state"]), "details": dict(row["details"] or {})})
