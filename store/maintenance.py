"""Registry methods for the maintenance workflows: encrypted agent data (KeyRotation) and fleet health (FleetHealth).

A mixin of `Registry`, kept apart so the core registry stays about agents and their audit trail.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, bindparam, delete, func, or_, select, update
from sqlalchemy import exc as sa_exc

from contracts.models import AgentState
from contracts.spec import SpecError
from store.records import AgentDataRecord, HealthRecord
from store.tables import AGENT_DATA, AGENT_HEALTH, AGENTS, AUDIT_EVENTS
from store.tenancy import Scope

__all__ = ["PROBED_STATES", "MaintenanceStore"]

_DATA = AGENT_DATA
_HEALTH = AGENT_HEALTH
_AGENTS = AGENTS
_EVENTS = AUDIT_EVENTS

# The fleet monitor probes agents in these states; everything else has no VM to probe or a lifecycle busy with it.
PROBED_STATES = (AgentState.RUNNING.value, AgentState.DEGRADED.value)


class MaintenanceStore:
    """Every query goes through `self._scope.limit` and runs in `self._connect()` (the tenant context)."""

    engine: Engine
    _insert: Any
    _scope: Scope

    def _connect(self, *, write: bool = False, immediate: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --- agent data (ciphertext only) ------------------------------------------------------------------------------

    def put_agent_data(
        self,
        *,
        agent_id: str,
        account_id: str,
        name: str,
        ciphertext: str,
        key_version: int,
        at: datetime | None = None,
    ) -> None:
        """Insert or replace one item; refuses (SpecError) an item of this agent stored under another account."""
        values = {
            "agent_id": agent_id,
            "account_id": account_id,
            "name": name,
            "ciphertext": ciphertext,
            "key_version": key_version,
            "updated_at": (at or datetime.now(UTC)).astimezone(UTC),
        }
        insert = self._insert(_DATA).values(values)
        upsert = insert.on_conflict_do_update(
            index_elements=[_DATA.c.agent_id, _DATA.c.name],
            set_={"ciphertext": ciphertext, "key_version": key_version, "updated_at": values["updated_at"]},
            where=_DATA.c.account_id == insert.excluded.account_id,
        ).returning(_DATA.c.id)
        moved = SpecError("account_id", f"agent {agent_id!r} keeps its data under another account")
        if self._scope.account_id not in (None, account_id):
            raise SpecError("account_id", "is not the account of this registry")
        with self._connect(write=True) as conn:
            try:
                upserted = conn.execute(upsert).scalar_one_or_none()
            except sa_exc.ProgrammingError as exc:
                # Under RLS the colliding row of another account is not even visible: the database refuses.
                if getattr(exc.orig, "sqlstate", None) == "42501":
                    raise moved from None
                raise
            if upserted is None:
                raise moved

    def agent_data(self, agent_id: str, name: str) -> AgentDataRecord | None:
        query = self._scope.limit(select(_DATA).where(_DATA.c.agent_id == agent_id, _DATA.c.name == name), _DATA)
        with self._connect() as conn:
            row = conn.execute(query).mappings().one_or_none()
        return None if row is None else _data(row)

    def agent_data_of(self, agent_id: str, *, below_version: int | None = None) -> list[AgentDataRecord]:
        """The agent's items by name; only those made with a key version below `below_version` when given."""
        query = select(_DATA).where(_DATA.c.agent_id == agent_id).order_by(_DATA.c.name)
        if below_version is not None:
            query = query.where(_DATA.c.key_version < below_version)
        query = self._scope.limit(query, _DATA)
        with self._connect() as conn:
            return [_data(row) for row in conn.execute(query).mappings()]

    def replace_ciphertext(self, agent_id: str, name: str, *, old: str, new: str, key_version: int) -> bool:
        """Compare-and-set: False when the item changed (a concurrent put) or vanished since `old` was read."""
        stmt = (
            update(_DATA)
            .where(_DATA.c.agent_id == agent_id, _DATA.c.name == name, _DATA.c.ciphertext == old)
            .values(ciphertext=new, key_version=key_version, updated_at=datetime.now(UTC))
        )
        with self._connect(write=True) as conn:
            return conn.execute(self._scope.limit(stmt, _DATA)).rowcount == 1

    def delete_agent_data(self, agent_id: str) -> int:
        """Remove every item of the agent (destroy and the orphan sweep); returns how many there were."""
        stmt = self._scope.limit(delete(_DATA).where(_DATA.c.agent_id == agent_id), _DATA)
        with self._connect(write=True) as conn:
            return int(conn.execute(stmt).rowcount)

    def agent_data_counts(self) -> dict[str, int]:
        """Items per agent id, for the orphan sweep."""
        query = self._scope.limit(select(_DATA.c.agent_id, func.count()).group_by(_DATA.c.agent_id), _DATA)
        with self._connect() as conn:
            return {agent_id: int(count) for agent_id, count in conn.execute(query)}

    # --- audit -----------------------------------------------------------------------------------------------------

    def event_details(self, event_key: str) -> dict[str, str] | None:
        """The details of the audit event with this idempotency key, or None when it was never written."""
        query = self._scope.limit(select(_EVENTS.c.details).where(_EVENTS.c.event_key == event_key), _EVENTS)
        with self._connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row[0] or {})

    # --- fleet health ----------------------------------------------------------------------------------------------

    def health_all(self) -> dict[str, HealthRecord]:
        """Every agent's last known health (the table holds probed agents only; see prune_health)."""
        query = self._scope.limit(select(_HEALTH), _HEALTH)
        with self._connect() as conn:
            return {
                row["agent_id"]: HealthRecord(**{k: v for k, v in row.items() if k != "account_id"})
                for row in conn.execute(query).mappings()
            }

    def save_health(self, records: Sequence[HealthRecord]) -> None:
        """Upsert the records and show each status on the agent's row, without touching its state.

        Only rows still in a probed state get the new health, so a lifecycle that moved on meanwhile keeps its own.
        Each row takes its account from `agents`; an account's registry saves only its own agents' records.
        """
        if not records:
            return
        owners_query = select(_AGENTS.c.agent_id, _AGENTS.c.account_id).where(
            _AGENTS.c.agent_id.in_({r.agent_id for r in records})
        )
        with self._connect() as conn:
            owners: dict[str, str] = {a: b for a, b in conn.execute(self._scope.limit(owners_query, _AGENTS))}
        if self._scope.account_id is not None:
            records = [r for r in records if r.agent_id in owners]
            if not records:
                return
        rows = [
            {
                "agent_id": r.agent_id,
                # An agent unknown to `agents` gets no account: only the system sees its health row.
                "account_id": owners.get(r.agent_id, ""),
                "healthy": r.healthy,
                "status": r.status[:32],
                "reason": r.reason[:300],
                "consecutive_failures": r.consecutive_failures,
                "address": r.address,
                "checked_at": r.checked_at.astimezone(UTC),
            }
            for r in records
        ]
        insert = self._insert(_HEALTH)
        upsert = insert.on_conflict_do_update(
            index_elements=[_HEALTH.c.agent_id],
            set_={name: insert.excluded[name] for name in rows[0] if name != "agent_id"},
        )
        show = (
            update(_AGENTS)
            .where(
                _AGENTS.c.agent_id == bindparam("b_agent_id"),
                # No IN (...) here: expanding parameters cannot be used with executemany.
                or_(*(_AGENTS.c.state == state for state in PROBED_STATES)),
                _AGENTS.c.health != bindparam("b_health"),
            )
            .values(health=bindparam("b_health"))
        )
        with self._connect(write=True) as conn:
            conn.execute(upsert, rows)
            conn.execute(
                self._scope.limit(show, _AGENTS), [{"b_agent_id": r["agent_id"], "b_health": r["status"]} for r in rows]
            )

    def prune_health(self) -> int:
        """Forget agents no longer probed (destroyed, failed, replaced by a new lifecycle state)."""
        probed = self._scope.limit(select(_AGENTS.c.agent_id).where(_AGENTS.c.state.in_(PROBED_STATES)), _AGENTS)
        stmt = self._scope.limit(delete(_HEALTH).where(_HEALTH.c.agent_id.not_in(probed)), _HEALTH)
        with self._connect(write=True) as conn:
            return int(conn.execute(stmt).rowcount)


def _data(row: RowMapping) -> AgentDataRecord:
    return AgentDataRecord(**{k: v for k, v in row.items() if k != "id"})
