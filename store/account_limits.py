"""Each account's quotas and agent lifetimes (table `account_limits`), and admission: the quota check that registers.

Reads and changes run in a transaction scoped to the account (store.tenancy), like the approval policies. Admission
runs in the registry's own write transaction (`Registry.record(before_write=...)`): the account's limits row is
locked (PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` locks the whole database), its live agents are counted,
and the new agent's row is written before the lock is let go, so two creates racing for the last place cannot both
get it. An account with no row has no limits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, select, update
from sqlalchemy.dialects import postgresql, sqlite

from contracts.limits import (
    LIMIT_FIELDS,
    AccountLimits,
    Admission,
    Admitted,
    LimitsChange,
    Usage,
    apply_limits_change,
    effective_lifetimes,
    quota_refusal,
    validate_limits_change,
    vcpus,
)
from contracts.models import AgentState, Transition
from store.registry import Registry
from store.tables import ACCOUNT_LIMITS, AGENTS
from store.tenancy import DbRoles, Scope, scoped_connection

__all__ = ["AccountLimitsStore", "OverQuota"]

_T = ACCOUNT_LIMITS
_ENDED = tuple(state.value for state in AgentState if state.terminal)


class OverQuota(Exception):
    """One more agent would break one of the account's quotas; the message names the quota and the usage."""


def _limits(account_id: str, row: RowMapping | None) -> AccountLimits:
    if row is None:
        return AccountLimits(account_id=account_id)
    return AccountLimits(account_id=account_id, **{name: int(row[name]) for name in LIMIT_FIELDS})


def _locked_limits(conn: Connection, account_id: str) -> AccountLimits:
    query = select(_T).where(_T.c.account_id == account_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return _limits(account_id, conn.execute(query).mappings().first())


def usage(conn: Connection, account_id: str, *, besides: str = "") -> Usage:
    """The account's live agents (other than `besides`), their vCPUs and their monthly prices, as registered."""
    rows = conn.execute(
        select(AGENTS.c.provider, AGENTS.c.size, AGENTS.c.monthly_usd_cents, AGENTS.c.monthly_eur_cents).where(
            AGENTS.c.account_id == account_id, AGENTS.c.state.not_in(_ENDED), AGENTS.c.agent_id != besides
        )
    ).all()
    return Usage(
        agents=len(rows),
        vcpus=sum(vcpus(provider, size) for provider, size, _, _ in rows),
        monthly_usd_cents=sum(usd for _, _, usd, _ in rows),
        monthly_eur_cents=sum(eur for _, _, _, eur in rows),
    )


class AccountLimitsStore:
    def __init__(self, *, engine: Engine, roles: DbRoles | None = None) -> None:
        self.engine = engine
        self.roles = roles or DbRoles.from_env()
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def get(self, account_id: str) -> AccountLimits:
        scope = Scope.of(account_id)
        with scoped_connection(self.engine, scope, self.roles) as conn:
            query = scope.limit(select(_T).where(_T.c.account_id == account_id), _T)
            return _limits(account_id, conn.execute(query).mappings().first())

    def usage(self, account_id: str) -> Usage:
        scope = Scope.of(account_id)
        with scoped_connection(self.engine, scope, self.roles) as conn:
            return usage(conn, account_id)

    def change(self, change: LimitsChange) -> AccountLimits:
        """Apply `change` and return the limits after it; a retry finds it applied and changes nothing."""
        validate_limits_change(change)
        if change.action == "show":
            return self.get(change.account_id)
        scope = Scope.of(change.account_id)
        with scoped_connection(self.engine, scope, self.roles, write=True, immediate=True) as conn:
            after = apply_limits_change(_locked_limits(conn, change.account_id), change)
            values = {name: getattr(after, name) for name in LIMIT_FIELDS}
            insert = self._insert(_T).values(account_id=after.account_id, updated_at=datetime.now(UTC), **values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[_T.c.account_id], set_={**values, "updated_at": insert.excluded.updated_at}
                )
            )
            return after

    def admit(self, registry: Registry, admission: Admission, *, at: datetime | None = None) -> Admitted:
        """Register the agent if every quota of its account allows one more, and say which lifetimes apply.

        Raises OverQuota (nothing written) or SpecError (a lifetime above the account's maximum). Idempotent:
        a retry of an admitted agent counts it once and writes nothing new.
        """
        found: dict[str, Any] = {}

        def check(conn: Connection) -> None:
            limits = _locked_limits(conn, admission.account_id)
            lifetime, idle = effective_lifetimes(admission, limits)
            before = usage(conn, admission.account_id, besides=admission.agent_id)
            need = vcpus(admission.provider, admission.size)
            why = quota_refusal(limits, before, need, admission)
            if why:
                raise OverQuota(why)
            found["admitted"] = Admitted(
                lifetime,
                idle,
                Usage(
                    before.agents + 1,
                    before.vcpus + need,
                    before.monthly_usd_cents + admission.monthly_usd_cents,
                    before.monthly_eur_cents + admission.monthly_eur_cents,
                ),
            )

        def priced(conn: Connection) -> None:
            conn.execute(
                update(AGENTS)
                .where(AGENTS.c.agent_id == admission.agent_id, AGENTS.c.account_id == admission.account_id)
                .values(monthly_usd_cents=admission.monthly_usd_cents, monthly_eur_cents=admission.monthly_eur_cents)
            )

        registry.record(
            Transition(
                event_key=admission.event_key,
                agent_id=admission.agent_id,
                account_id=admission.account_id,
                state=AgentState(admission.state),
                action="agent.requested",
                actor="lobstack",
                reason=admission.reason,
                name=admission.name,
                provider=admission.provider,
                region=admission.region,
                size=admission.size,
                at=at or datetime.now(UTC),
            ),
            before_write=check,
            after_write=priced,
        )
        admitted: Admitted = found["admitted"]
        return admitted
