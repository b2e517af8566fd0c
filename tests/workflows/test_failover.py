"""At most one live VM per agent through failover (invariants 4 and 6), on every pair `auto` can fail over between.

The hard case: a create really makes the VM but its answer is lost, and the provider then fails the look-up that would
have adopted it. Before the next placement is tried, that VM must be found and deleted (waiting, bounded, for the
provider to answer), its Vault tokens revoked and the deletion audited; a provider that never answers fails the
lifecycle with full cleanup and no second VM. cloudsim counts the VMs of each name alive at once (`peak_live`).

Each case spends half a minute in the create's retry backoff (CREATE_RETRY) before it fails over, so all four run at
once, each on its own cloudsim (a fault is per provider and simulator-wide) and its own stack: every test awaits its
own case, whose assertions are its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

import devstack
from activities.cloud.base import vm_name
from cloudsim.testing import RunningSim
from contracts.identifiers import workflow_id
from contracts.models import AgentState, AgentStatus, LifecycleInput
from tests.stack import Stack, eventually, make_stack, reap
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


NEVER_ANSWERS = "never answers"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cases(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, asyncio.Task[None]]]:
    """Every case of this module started at once, each on its own cloudsim and stack."""
    scenarios: dict[str, Callable[[Stack, RunningSim], Coroutine[Any, Any, None]]] = {
        pair: functools.partial(lost_create, pair=pair) for pair in PAIRS
    }
    scenarios[NEVER_ANSWERS] = never_answers
    sims: list[RunningSim] = []
    stacks: list[Stack] = []
    tasks: dict[str, asyncio.Task[None]] = {}
    try:
        for name, scenario in scenarios.items():
            tmp = tmp_path_factory.mktemp("failover")
            sims.append(devstack.start_simulator(tmp / "cloudsim", boot_latency_s=0.2))
            stacks.append(make_stack(temporal_dev.client, openbao, f"sqlite:///{tmp / 'registry.db'}", tmp))
            tasks[name] = asyncio.create_task(scenario(stacks[-1], sims[-1]), name=name)
        yield tasks
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        for stack in stacks:
            reap(stack)
        for sim in sims:
            sim.stop()


@pytest.mark.parametrize("pair", list(PAIRS))
async def test_a_lost_create_is_deleted_before_the_next_placement(
    cases: dict[str, asyncio.Task[None]], pair: str
) -> None:
    await cases[pair]


async def test_a_provider_that_never_answers_fails_the_lifecycle_without_a_second_vm(
    cases: dict[str, asyncio.Task[None]],
) -> None:
    await cases[NEVER_ANSWERS]


async def lost_create(stack: Stack, sim: RunningSim, pair: str) -> None:
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


async def never_answers(stack: Stack, sim: RunningSim) -> None:
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
