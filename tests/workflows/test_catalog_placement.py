"""A size the provider does not sell in a location, checked against its catalog at create: the lifecycle fails over
to a placement that sells it, or fails clearly with what is sold, and nothing is created where it is not sold."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError

from cloudsim.testing import RunningSim
from contracts.models import AgentState
from tests.stack import Stack
from tests.workflows.test_clouds import assert_clean, clouds

pytestmark = pytest.mark.asyncio(loop_scope="session")


def hetzner_creates(sim: RunningSim) -> int:
    return int(sim.state()["calls"].get("hetzner", {}).get("create", 0))


async def test_auto_fails_over_from_a_location_that_does_not_sell_the_size(stack: Stack, sim: RunningSim) -> None:
    creates = hetzner_creates(sim)
    async with stack.workers(providers=clouds(sim, stack)):
        # Hetzner's Singapore sells no cpx31 (large): DigitalOcean's Singapore, next in the failover order, does.
        agent_id = await stack.client.create_agent(stack.spec(provider="auto", region="ap-southeast", size="large"))
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        assert (running.provider, running.location) == ("digitalocean", "sgp1")
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    failovers = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "vm.failover"]
    assert [(e.details["provider"], e.details["location"], e.details["error"]) for e in failovers] == [
        ("hetzner", "sin", "PlanNotOffered")
    ]
    assert hetzner_creates(sim) == creates, "nothing is asked of a location that does not sell the size"
    assert_clean(stack, sim, agent_id)


async def test_one_provider_that_does_not_sell_the_size_fails_naming_what_it_sells(
    stack: Stack, sim: RunningSim
) -> None:
    creates = hetzner_creates(sim)
    async with stack.workers(providers=clouds(sim, stack)):
        agent_id = await stack.client.create_agent(stack.spec(provider="hetzner", region="ap-southeast", size="large"))
        with pytest.raises(WorkflowFailureError):
            await stack.client.result(agent_id)
        status = await stack.client.status(agent_id)
    assert status.state == AgentState.FAILED
    assert "does not offer cpx31 (size large) in sin; it offers there: cpx11 (small)" in status.last_error
    assert hetzner_creates(sim) == creates
    assert_clean(stack, sim, agent_id)
