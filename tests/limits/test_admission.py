"""Admission within an account's quotas (issue 14, item 4), on SQLite and PostgreSQL.

The store's own check under eight threads at once, then through the whole stack: the refused create names the quota
and the usage, nothing is created for it, a destroyed agent frees its place, three creates racing for two places.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from activities.errors import AdmissionRefused
from clients.client import AgentRefused
from contracts.errors import ADMISSION_REFUSED
from contracts.limits import Admission, LimitsChange
from contracts.models import AgentState, Residue
from contracts.spec import SpecError
from store import Registry
from store.account_limits import AccountLimitsStore, OverQuota
from store.schema import upgrade_database
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _admission(agent_id: str, size: str = "small", provider: str = "local") -> Admission:
    return Admission(agent_id, "acme", "n", provider, "eu-central", size, event_key=f"{agent_id}/admission")


def test_the_client_knows_the_refusal_by_the_error_class_name() -> None:
    assert AdmissionRefused.__name__ == ADMISSION_REFUSED and AdmissionRefused.refuses_agent


async def test_eight_creates_at_once_get_exactly_the_three_places(database_url: str) -> None:
    upgrade_database(database_url)
    registry = Registry.from_url(database_url)
    limits = AccountLimitsStore(engine=registry.engine, roles=registry.roles)
    try:
        limits.change(LimitsChange(account_id="acme", action="set", max_agents=3))
        start = threading.Barrier(8)
        outcomes: dict[str, str] = {}

        def admit(agent_id: str) -> None:
            start.wait()
            try:
                limits.admit(registry, _admission(agent_id))
                outcomes[agent_id] = "admitted"
            except OverQuota as err:
                outcomes[agent_id] = str(err)

        threads = [threading.Thread(target=admit, args=(f"a-{n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        admitted = sorted(a for a, said in outcomes.items() if said == "admitted")
        assert len(outcomes) == 8 and len(admitted) == 3, outcomes
        refusals = {said for said in outcomes.values() if said != "admitted"}
        assert refusals == {
            "quota max_agents of account acme is 3 and 3 agents are live; destroy one or raise the quota with "
            "`lobstack limits set`"
        }
        assert sorted(a.agent_id for a in registry.list_agents("acme")) == admitted
        # A retried admission of an admitted agent counts it once and writes nothing more.
        limits.admit(registry, _admission(admitted[0]))
        assert len(registry.events(agent_id=admitted[0])) == 1
        assert limits.usage("acme").agents == 3
    finally:
        registry.close()


async def test_vcpus_are_counted_per_provider_plan(database_url: str) -> None:
    upgrade_database(database_url)
    registry = Registry.from_url(database_url)
    limits = AccountLimitsStore(engine=registry.engine, roles=registry.roles)
    try:
        limits.change(LimitsChange(account_id="acme", action="set", max_vcpus=6))
        limits.admit(registry, _admission("h-1", "medium", "hetzner"))  # cpx21: 3 vCPUs
        with pytest.raises(
            OverQuota, match="max_vcpus of account acme is 6; its live agents hold 3 and this one needs 4"
        ):
            limits.admit(registry, _admission("a-1", "large", "auto"))  # auto counts the most any cloud gives
        limits.admit(registry, _admission("d-1", "medium", "digitalocean"))  # s-2vcpu-4gb: 2
        assert limits.usage("acme").vcpus == 5
        with pytest.raises(SpecError, match="max_lifetime_s"):
            limits.change(
                LimitsChange(account_id="acme", action="set", max_lifetime_s=3600, default_max_lifetime_s=7200)
            )
        limits.change(LimitsChange(account_id="acme", action="set", max_lifetime_s=3600))
        too_long = _admission("l-1")
        too_long.max_lifetime_s = 7200
        with pytest.raises(SpecError, match="max_lifetime_s: 7200s is above account acme's maximum of 3600s"):
            limits.admit(registry, too_long)
        assert registry.get("l-1") is None
    finally:
        registry.close()


async def test_a_create_beyond_the_quota_is_refused_before_anything_is_made(stack_any_db: Stack) -> None:
    stack = stack_any_db
    async with stack.workers():
        shown = await stack.client.change_limits(LimitsChange(account_id="acme", action="set", max_agents=1))
        assert shown.max_agents == 1
        first = await stack.client.create_agent(stack.spec())
        refused_id = f"t-{uuid.uuid4().hex[:12]}"
        with pytest.raises(AgentRefused) as refused:
            await stack.client.create_agent(stack.spec(agent_id=refused_id))
        assert refused.value.why == (
            "quota max_agents of account acme is 1 and 1 agents are live; destroy one or raise the quota with "
            "`lobstack limits set`"
        )
        result = await stack.client.result(refused_id)
        assert result.state == AgentState.REJECTED and result.reason == refused.value.why
        assert stack.vms_of(refused_id) == 0 and stack.vault.residue(refused_id) == Residue()
        assert stack.registry.get(refused_id) is None  # never registered, so it holds no place
        trail = [(e.action, e.reason) for e in stack.registry.events(agent_id=refused_id)]
        assert trail == [("agent.refused", refused.value.why)]

        await stack.client.wait_for(first, {AgentState.RUNNING}, timeout_s=60)
        await stack.client.destroy(first, requested_by="bob", reason="make room")
        assert (await stack.client.result(first)).state == AgentState.DESTROYED
        again = await stack.client.create_agent(stack.spec())  # the destroyed agent freed its place
        await stack.client.destroy(again, requested_by="bob", reason="done")
        assert (await stack.client.result(again)).state == AgentState.DESTROYED


async def test_three_creates_racing_for_two_places(stack_any_db: Stack) -> None:
    stack = stack_any_db
    async with stack.workers():
        await stack.client.change_limits(LimitsChange(account_id="acme", action="set", max_agents=2))
        specs = [stack.spec() for _ in range(3)]
        outcomes = await asyncio.gather(*(stack.client.create_agent(s) for s in specs), return_exceptions=True)
        admitted = [o for o in outcomes if isinstance(o, str)]
        refused = [o for o in outcomes if isinstance(o, AgentRefused)]
        assert len(admitted) == 2 and len(refused) == 1, outcomes
        assert "quota max_agents of account acme is 2 and 2 agents are live" in refused[0].why
        for agent_id in admitted:
            await stack.client.destroy(agent_id, requested_by="bob", reason="done")
            assert (await stack.client.result(agent_id)).state == AgentState.DESTROYED


async def test_monthly_spend_is_capped_per_currency(database_url: str) -> None:
    upgrade_database(database_url)
    registry = Registry.from_url(database_url)
    limits = AccountLimitsStore(engine=registry.engine, roles=registry.roles)
    try:
        limits.change(LimitsChange(account_id="acme", action="set", max_monthly_usd=30, max_monthly_eur=10))
        first = _admission("d-1", "medium", "digitalocean")
        first.monthly_usd_cents = 2400
        limits.admit(registry, first)
        second = _admission("v-1", "small", "vultr")
        second.monthly_usd_cents = 1000
        with pytest.raises(OverQuota) as refused:
            limits.admit(registry, second)
        assert str(refused.value) == (
            "quota max_monthly_usd of account acme is 30 USD; its live agents cost 24.00 USD a month and this one "
            "10.00 USD; pick a smaller size, destroy an agent or raise the quota"
        )
        euro = _admission("h-1", "small", "hetzner")
        euro.monthly_eur_cents = 470  # another currency's cap, untouched by the dollars
        limits.admit(registry, euro)
        assert (limits.usage("acme").monthly_usd_cents, limits.usage("acme").monthly_eur_cents) == (2400, 470)
    finally:
        registry.close()


async def test_a_refusal_that_ended_the_run_before_the_admission_update_came_is_still_a_refusal(stack: Stack) -> None:
    """A refused run can end before the client's admission update reaches it (the update then finds no run): the
    client reads the run's result instead and still raises the refusal, never a failure of its own."""
    async with stack.workers():
        await stack.client.change_limits(LimitsChange(account_id="acme", action="set", max_agents=1))
        first = await stack.client.create_agent(stack.spec())
        spec = stack.spec(agent_id=f"t-{uuid.uuid4().hex[:12]}")
        handle = await stack.client._start_lifecycle(spec, "test")
        ended = await stack.client.result(spec.agent_id)  # refused and ended, before anyone asked for its admission
        assert ended.state == AgentState.REJECTED
        with pytest.raises(AgentRefused) as refused:
            await stack.client._admitted(spec.agent_id, handle)
        assert refused.value.why == ended.reason
        await stack.client.destroy(first, requested_by="bob")
        await stack.client.result(first)
