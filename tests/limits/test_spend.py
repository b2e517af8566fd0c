"""A monthly spend quota through the whole stack, priced from cloudsim's catalogs by the real SDKs (issue 14, item 4):
a Hetzner agent over the account's euro cap is refused before anything is made, naming the quota and the usage."""

from __future__ import annotations

import uuid

import pytest

from cloudsim.testing import RunningSim
from contracts.errors import AgentRefused
from contracts.limits import LimitsChange
from contracts.models import AgentState
from tests.stack import Stack
from tests.workflows.test_clouds import assert_clean, clouds

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_vm_over_the_monthly_spend_is_refused_before_it_is_made(stack_any_db: Stack, sim: RunningSim) -> None:
    stack = stack_any_db
    providers = clouds(sim, stack)
    price = providers["hetzner"].monthly_price("hel1", "cpx11")
    assert price.currency == "EUR"
    async with stack.workers(providers=providers):
        await stack.client.change_limits(LimitsChange(account_id="acme", action="set", max_monthly_eur=1))
        agent_id = f"t-{uuid.uuid4().hex[:12]}"
        with pytest.raises(AgentRefused) as refused:
            await stack.client.create_agent(stack.spec(agent_id=agent_id, provider="hetzner", region="eu-north"))
        assert refused.value.why == (
            f"quota max_monthly_eur of account acme is 1 EUR; its live agents cost 0.00 EUR a month and this one "
            f"{price.amount:.2f} EUR; pick a smaller size, destroy an agent or raise the quota"
        )
        assert (await stack.client.result(agent_id)).state == AgentState.REJECTED
        assert_clean(stack, sim, agent_id)
        assert stack.registry.get(agent_id) is None
