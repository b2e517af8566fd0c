"""At most one live VM per agent through failover (invariants 4 and 6), on every pair `auto` can fail over between.

The hard case: a create really makes the VM but its answer is lost, and the provider then fails the look-up that would
have adopted it. Before the next placement is tried, that VM must be found and deleted (waiting, bounded, for the
provider to answer), its Vault tokens revoked and the deletion audited; a provider that never answers fails the
lifecycle with full cleanup and no second VM. cloudsim counts the VMs of each name alive at once (`peak_live`).
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.cloud.base import vm_name
from cloudsim.testing import RunningSim
from contracts.identifiers import workflow_id
from contracts.models import AgentState, AgentStatus, LifecycleInput
from tests.stack import Stack, eventually
from tests.workflows.test_clouds import assert_clean, clouds, sim_vms
from workflows.agent_lifecycle import AgentLifecycleWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

# (region, providers that must refuse with a capacity error first, where the lost create happens, where it ends).
# `auto` tries Hetzner, then DigitalOcean, then Vultr, so it fails over between exactly these two pairs of providers;
# the third is the issue's own case, a move between two locations of one provider (Frankfurt's substitutes).
PAIRS = {
    "hetzner->digitalocean": ("us-west", [], ("hetzner", "hil"), ("digitalocean", "sfo3")),
    "digitalocean->vultr": ("us-west", ["hetzner"], ("digitalocean", "sfo3"), ("vultr", "sea")),
    "hetzner->hetzner": ("eu-central", [], ("hetzner", "fsn1"), ("hetzner", "nbg1")),
}


def lose_a_create_then_go_down(sim: RunningSim, provider: str, refusing: list[str]) -> None:
    for name in refusing:
        sim.set_faults(provider=name, endpoint="create", capacity=True)
    sim.set_faults(provider=provider, endpoint="create", drop_after_create=1)
    # From the moment that create has gone through, every look-up answers 503.
    sim.set_faults(provider=provider, endpoint="list", error_rate=1.0, status=503, after_create=True)


def waiting_for(provider: str) -> str:
    return f"for {provider} to answer, to delete any such VM before trying the next placement"


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_lost_create_is_deleted_before_the_next_placement(stack: Stack, sim: RunningSim, pair: str) -> None:
    region, refusing, (lost_on, lost_at), (ends_on, ends_at) = PAIRS[pair]
    lose_a_create_then_go_down(sim, lost_on, refusing)
    async with stack.workers(providers=clouds(sim, stack)):
        agent_id = await stack.client.create_agent(stack.spec(provider="auto", region=region))
        name = vm_name(agent_id)

        async def stuck() -> AgentStatus | None:
            status = await stack.client.status(agent_id)
            return status if waiting_for(lost_on) in status.waiting_for else None

        await eventually(stuck, timeout_s=120, what=f"the lifecycle waiting for {lost_on} to answer")
        [abandoned] = [vm for vm in sim_vms(sim, agent_id) if vm["provider"] == lost_on]
        assert abandoned["location"] == lost_at
        assert len(sim_vms(sim, agent_id)) == 1, "a second VM was created while the first was unresolved"
        sim.set_faults(provider=lost_on, endpoint="list", error_rate=0.0)  # the provider answers again

        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        assert (running.provider, running.location) == (ends_on, ends_at)
        [vm] = sim_vms(sim, agent_id)
        assert str(vm["id"]) == running.vm_id and str(abandoned["id"]) != running.vm_id

        async def logged_in() -> int | None:
            tokens = stack.vault.residue(agent_id).tokens
            return tokens or None

        # Only the new VM's bridge holds a token: the abandoned one's was revoked with its VM.
        assert await eventually(logged_in, timeout_s=30, what="the new bridge's login") == 1
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    state = sim.state()
    assert state["peak_live"][name] == 1, "two VMs of the agent were alive at once"
    events = stack.registry.events(agent_id=agent_id)
    [deleted] = [e for e in events if e.action == "vm.abandoned_deleted"]
    assert deleted.details["abandoned_vm_ids"] == str(abandoned["id"]) and deleted.details["provider"] == lost_on
    assert int(deleted.details["tokens_revoked"]) >= 1
    assert [e.action for e in events].count("vm.created") == 1
    assert_clean(stack, sim, agent_id)


async def test_a_provider_that_never_answers_fails_the_lifecycle_without_a_second_vm(
    stack: Stack, sim: RunningSim
) -> None:
    lose_a_create_then_go_down(sim, "hetzner", [])
    async with stack.workers(providers=clouds(sim, stack)):
        spec = stack.spec(provider="auto", region="us-west")
        handle = await stack.temporal.start_workflow(
            AgentLifecycleWorkflow.run,
            LifecycleInput(spec=spec, abandoned_create_wait_s=3),
            id=workflow_id(spec.agent_id),
            task_queue=stack.task_queue,
        )

        async def cleaning_up() -> AgentStatus | None:
            status = await stack.client.status(spec.agent_id)
            return status if status.state == AgentState.DESTROYING else None

        status = await eventually(cleaning_up, timeout_s=120, what="the lifecycle failing and cleaning up")
        assert "did not confirm it gone within 3s" in status.last_error
        assert len(sim_vms(sim, spec.agent_id)) == 1, "a second VM was created"
        sim.set_faults(provider="hetzner", endpoint="list", error_rate=0.0)  # cleanup can now finish
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert (await stack.client.status(spec.agent_id)).state == AgentState.FAILED
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "AgentFailed"
    state = sim.state()
    assert state["peak_live"][vm_name(spec.agent_id)] == 1
    assert state["created"].get("digitalocean", {}).get(vm_name(spec.agent_id), 0) == 0
    assert_clean(stack, sim, spec.agent_id)
