"""The registry: current agents and their audit trail, written together so neither can drift from the other."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from store.engine import create_schema, make_engine
from store.maintenance import MaintenanceStore
from store.records import AgentRecord, AuditRecord
from store.tables import LAST_ERROR_MAX, REASON_MAX, AgentRow, AuditEvent
from store.validation import validate_transition
from workflows.models import AgentState, Transition
from workflows.spec import SpecError

__all__ = ["Registry"]

_AGENTS: Table = AgentRow.__table__  # type: ignore[assignment]
_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
# Carried by a transition only when known; an empty value means "unchanged", not "cleared".
_KEPT_UNLESS_GIVEN = ("name", "provider", "region", "size", "vm_id", "address", "health")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Registry(MaintenanceStore):
    """Reads and writes the `agents` and `audit_events` tables. Thread-safe: every call uses its own connection."""

    def __init__(self, *, engine: Engine) -> None:
        if engine.dialect.name == "postgresql":
            self._insert: Any = postgresql.insert
        elif engine.dialect.name == "sqlite":
            self._insert = sqlite.insert
        else:
            raise ValueError(f"database dialect {engine.dialect.name!r} is not supported; use SQLite or PostgreSQL")
        self.engine = engine
        self._owns_engine = False

    @classmethod
    def from_url(cls, url: str) -> Self:
        """A registry on its own engine, with the schema created if missing; `close()` disposes the engine."""
        engine = make_engine(url)
        try:
            create_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        registry = cls(engine=engine)
        registry._owns_engine = True
        return registry

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # --- writes ----------------------------------------------------------------------------------------------------

    def record(self, t: Transition) -> bool:
        """Upsert the agent row and append the audit event in one transaction; False if `t.event_key` was seen before.

        Raises SpecError (a ValueError) naming the field for a bad transition, and for an agent id already registered
        under another account.
        """
        validate_transition(t)
        at = (t.at or datetime.now(UTC)).astimezone(UTC)
        state = AgentState(t.state).value
        reason = _clip(t.reason, REASON_MAX)

        event = (
            self._insert(_EVENTS)
            .values(
                event_key=t.event_key,
                at=at,
                account_id=t.account_id,
                agent_id=t.agent_id,
                action=t.action,
                state=state,
                actor=t.actor,
                reason=reason,
                details=dict(t.details),
            )
            # The unique key decides, not a prior SELECT: concurrent duplicates wait on the key and then do nothing.
            .on_conflict_do_nothing(index_elements=[_EVENTS.c.event_key])
            .returning(_EVENTS.c.id)
        )

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

        # The event insert comes first, so on SQLite the transaction takes the write lock with its first statement.
        with self.engine.begin() as conn:
            if conn.execute(event).scalar_one_or_none() is None:
                return False
            if t.audit_only:
                return True
            if conn.execute(upsert_agent).scalar_one_or_none() is None:
                raise SpecError("account_id", f"agent {t.agent_id!r} is registered under another account")
        return True

    # --- reads -----------------------------------------------------------------------------------------------------

    def get(self, agent_id: str) -> AgentRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(_AGENTS).where(_AGENTS.c.agent_id == agent_id)).mappings().one_or_none()
        return None if row is None else _agent(row)

    def exists(self, agent_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(_AGENTS.c.agent_id).where(_AGENTS.c.agent_id == agent_id)).first()
        return found is not None

    def list_agents(self, account_id: str | None = None, states: Collection[str] | None = None) -> list[AgentRecord]:
        """Agents, oldest first; filtered by account and by state when given (an empty `states` matches nothing)."""
        query = select(_AGENTS).order_by(_AGENTS.c.created_at, _AGENTS.c.agent_id)
        if account_id is not None:
            query = query.where(_AGENTS.c.account_id == account_id)
        if states is not None:
            query = query.where(_AGENTS.c.state.in_([AgentState(s).value for s in states]))
        with self.engine.connect() as conn:
            return [_agent(row) for row in conn.execute(query).mappings()]

    def events(self, agent_id: str | None = None, account_id: str | None = None) -> list[AuditRecord]:
        """Audit events in insertion order, filtered by agent and by account when given."""
        conditions: list[ColumnElement[bool]] = []
        if agent_id is not None:
            conditions.append(_EVENTS.c.agent_id == agent_id)
        if account_id is not None:
            conditions.append(_EVENTS.c.account_id == account_id)
        query = select(_EVENTS).where(*conditions).order_by(_EVENTS.c.id)
        with self.engine.connect() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]


def _agent(row: Mapping[str, Any]) -> AgentRecord:
    return AgentRecord(**{**row, "state": AgentState(row["state"])})


def _event(row: Mapping[str, Any]) -> AuditRecord:
    return AuditRecord(**{**row, "state": AgentState(row["state"]), "details": dict(row["details"] or {})})
