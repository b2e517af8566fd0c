"""Warm pools end to end: the WarmPool workflow, claims by lifecycles, and what is left behind, against real Temporal,
OpenBao and cloudsim through the providers' SDKs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.cloud.base import vm_name
from activities.secrets.pool_vault import PoolVault
from cloudsim.testing import RunningSim
from contracts.maintenance_models import SweepInput, SweepResult
from contracts.models import AgentState, Residue
from contracts.pool import POOL_LABEL, ClaimRequest, PoolClaim, PoolStatus, PoolTuning, pool_workflow_id
from contracts.spec import SpecError
from contracts.workflow_names import POOL_CLAIM_UPDATE
from tests.maintenance.helpers import run_now
from tests.stack import Stack, eventually
from tests.workflows.test_clouds import clouds
from workflows.orphan_sweep import OrphanSweepWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

WHERE = ("hetzner", "eu-central", "small")
FAST = PoolTuning(probe_every_s=5, claim_grace_s=20, backoff_first_s=1, backoff_max_s=2, pause_after=3, pause_s=3600)


def pool_vms(sim: RunningSim) -> list[dict[str, Any]]:
    return [vm for vm in sim.state()["vms"] if POOL_LABEL in (vm.get("labels") or {})]


async def until_ready(stack: Stack, n: int, *, where: tuple[str, str, str] = WHERE) -> PoolStatus:
    async def ready() -> PoolStatus | None:
        status = await stack.client.pool_status(*where)
        return status if status.ready >= n else None

    return await eventually(ready, timeout_s=90, what=f"{n} ready VMs in pool {where}")


def pool_vault(stack: Stack) -> PoolVault:
    return PoolVault(stack.vault.settings)


async def test_a_claimed_vm_becomes_the_agent_and_the_pool_refills(stack: Stack, sim: RunningSim) -> None:
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*WHERE, min=2, max=3, tuning=FAST)
        before = await until_ready(stack, 2)
        agent_id = await stack.client.create_agent(stack.spec(provider="hetzner", region="eu-central", size="small"))
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        assert running.started_from == "warm pool hetzner-eu-central-small"
        ready_ids = {vm.vm_id for vm in before.vms if vm.status == "ready"}
        assert running.vm_id in ready_ids, "the agent runs on a VM the pool had ready"
        [vm] = [vm for vm in sim.state()["vms"] if str(vm["id"]) == running.vm_id]
        assert vm["name"] == vm_name(agent_id) and POOL_LABEL not in vm["labels"]
        assert running.health == "healthy"
        # The pool made a replacement, and keeps the agent's VM on its books only as claimed.
        after = await until_ready(stack, 2)
        assert running.vm_id not in {v.vm_id for v in after.vms if v.status == "ready"}
        await stack.client.destroy(agent_id)
        result = await stack.client.result(agent_id)
        assert result.state == AgentState.DESTROYED
        assert str(running.vm_id) not in {str(v["id"]) for v in sim.state()["vms"]}, "destroy deleted the VM"
        assert stack.vault.residue(agent_id) == Residue()
        claimed = next(v for v in before.vms if v.vm_id == running.vm_id)
        assert pool_vault(stack).pool_residue(claimed.slot) == Residue(), "the pool identity went with the claim"

        final = await stack.client.delete_pool(*WHERE)
    assert final.deleting and final.vms == []
    assert pool_vms(sim) == []
    assert all(pool_vault(stack).pool_residue(v.slot) == Residue() for v in after.vms)


async def test_concurrent_claims_get_distinct_vms_and_an_empty_pool_creates_cold(stack: Stack, sim: RunningSim) -> None:
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*WHERE, min=2, max=2, tuning=FAST)
        await until_ready(stack, 2)
        # A pool of two and three agents at once: two warm, one cold, three distinct VMs.
        specs = [stack.spec(provider="hetzner", region="eu-central", size="small") for _ in range(3)]
        ids = await asyncio.gather(*(stack.client.create_agent(s) for s in specs))
        running = await asyncio.gather(*(stack.client.wait_for(i, {AgentState.RUNNING}, timeout_s=90) for i in ids))
        starts = sorted(r.started_from.split(" (")[0] for r in running)
        assert starts == ["cold create", "warm pool hetzner-eu-central-small", "warm pool hetzner-eu-central-small"]
        assert len({r.vm_id for r in running}) == 3
        cold = next(r for r in running if r.started_from.startswith("cold"))
        assert "no ready VM" in cold.started_from
        status = await stack.client.pool_status(*WHERE)
        assert status.claims == 2 and status.empty_claims == 1
        for agent_id in ids:
            await stack.client.destroy(agent_id)
        for agent_id in ids:
            assert (await stack.client.result(agent_id)).state == AgentState.DESTROYED
        await stack.client.delete_pool(*WHERE)
    assert pool_vms(sim) == []
    assert [vm for vm in sim.state()["vms"] if vm["name"] in {vm_name(i) for i in ids}] == []


async def test_a_claim_is_idempotent_per_agent_and_hostile_bodies_are_refused(stack: Stack, sim: RunningSim) -> None:
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*WHERE, min=1, max=1, tuning=FAST)
        await until_ready(stack, 1)
        handle = stack.temporal.get_workflow_handle(pool_workflow_id(*WHERE))
        first = await handle.execute_update(POOL_CLAIM_UPDATE, ClaimRequest("a-1", "acme"), result_type=PoolClaim)
        again = await handle.execute_update(POOL_CLAIM_UPDATE, ClaimRequest("a-1", "acme"), result_type=PoolClaim)
        assert first.vm is not None and again.vm is not None and first.vm.slot == again.vm.slot
        other = await handle.execute_update(POOL_CLAIM_UPDATE, ClaimRequest("a-2", "acme"), result_type=PoolClaim)
        assert other.vm is None and "no ready VM" in other.reason
        for body in ([{"agent_id": "a-3"}, {"agent_id": "a-4"}], [{"agent_id": 7}], [{"agent_id": "a-5", "x": 1}]):
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(POOL_CLAIM_UPDATE, args=body)
        # Still serving: the status answers, and nothing was claimed by the refused bodies.
        status = await stack.client.pool_status(*WHERE)
        assert status.claims == 1 and [v.agent_id for v in status.vms if v.status == "claimed"] == ["a-1"]
        # The claim was never adopted (no lifecycle): after its grace the pool deletes that VM.
        claimed = first.vm

        async def released() -> bool | None:
            # Off the books only once its VM and its identity are both verified gone.
            status = await stack.client.pool_status(*WHERE)
            return True if claimed.slot not in {v.slot for v in status.vms} else None

        await eventually(released, timeout_s=60, what="the unadopted claimed VM released after its grace")
        assert claimed.vm_id not in {str(v["id"]) for v in sim.state()["vms"]}
        assert pool_vault(stack).pool_residue(claimed.slot) == Residue()
        await stack.client.delete_pool(*WHERE)
    assert pool_vms(sim) == []


async def test_shrinking_deletes_the_extra_vms(stack: Stack, sim: RunningSim) -> None:
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*WHERE, min=3, max=3, tuning=FAST)
        await until_ready(stack, 3)
        assert len(pool_vms(sim)) == 3
        status = await stack.client.set_pool(*WHERE, min=1, max=1)
        assert (status.min, status.max) == (1, 1)

        async def shrunk() -> PoolStatus | None:
            # Off the books only once deleted and verified gone, with their identities.
            status = await stack.client.pool_status(*WHERE)
            return status if len(status.vms) == 1 else None

        status = await eventually(shrunk, timeout_s=60, what="the pool shrunk to one VM")
        assert status.ready == 1 and len(pool_vms(sim)) == 1
        await stack.client.delete_pool(*WHERE)
    assert pool_vms(sim) == []


async def test_failing_creates_back_off_then_pause_and_set_resumes(stack: Stack, sim: RunningSim) -> None:
    before = sim.state()["calls"].get("hetzner", {}).get("create", 0)  # the simulator counts for the whole session
    sim.set_faults(provider="hetzner", endpoint="create", error_rate=1.0)
    try:
        async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
            await stack.client.set_pool(*WHERE, min=1, max=1, tuning=FAST)

            async def paused() -> PoolStatus | None:
                status = await stack.client.pool_status(*WHERE)
                return status if status.paused_until else None

            status = await eventually(paused, timeout_s=90, what="the pool paused after failed creates")
            assert status.failing == FAST.pause_after and status.failed == FAST.pause_after
            assert status.last_error
            creates = sim.state()["calls"]["hetzner"]["create"] - before
            # Capped: each failed create was tried twice (POOL_CREATE_RETRY), then the pool paused.
            assert FAST.pause_after <= creates <= 2 * FAST.pause_after
            events = [e for e in stack.registry.events("hetzner-eu-central-small") if e.action == "pool.paused"]
            assert len(events) == 1
            sim.set_faults(provider="hetzner", endpoint="create", error_rate=0.0)
            await stack.client.set_pool(*WHERE, min=1, max=1)
            resumed = await until_ready(stack, 1)
            assert resumed.failing == 0 and resumed.paused_until is None
            await stack.client.delete_pool(*WHERE)
    finally:
        sim.set_faults(provider="hetzner", endpoint="create", error_rate=0.0)
    assert pool_vms(sim) == []


async def test_pool_settings_are_checked_before_anything_starts(stack: Stack) -> None:
    with pytest.raises(SpecError, match="provider: must be one of hetzner, vultr"):
        await stack.client.set_pool("digitalocean", "eu-central", "small", min=1, max=1)
    with pytest.raises(SpecError, match="max: must be between min"):
        await stack.client.set_pool(*WHERE, min=3, max=2)
    with pytest.raises(SpecError, match="region: must be one of"):
        await stack.client.set_pool("hetzner", "mars", "small", min=1, max=1)


async def test_the_sweep_removes_what_a_terminated_pool_left(stack: Stack, sim: RunningSim) -> None:
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*WHERE, min=2, max=2, tuning=FAST)
        status = await until_ready(stack, 2)
        slots = [vm.slot for vm in status.vms]
        # Terminated, not deleted: nothing of the pool's own cleanup runs (an operator's mistake, a lost namespace).
        await stack.temporal.get_workflow_handle(pool_workflow_id(*WHERE)).terminate("test: lost pool")
        assert len(pool_vms(sim)) == 2
        assert all(pool_vault(stack).pool_residue(slot).roles == 1 for slot in slots)
        dry: SweepResult = await run_now(stack, OrphanSweepWorkflow.run, SweepInput(dry_run=True), "sweep")
        assert dry.pools.vms == 2 and sorted(dry.pools.agent_ids) == sorted(slots) and len(pool_vms(sim)) == 2
        swept: SweepResult = await run_now(stack, OrphanSweepWorkflow.run, SweepInput(), "sweep")
    assert swept.pools.vms == 2 and swept.pools.roles == 2 and swept.pools.policies == 2
    assert pool_vms(sim) == []
    assert all(pool_vault(stack).pool_residue(slot) == Residue() for slot in slots)
    events = [e for e in stack.registry.events("warm-pools") if e.action == "pool.orphans_swept"]
    assert events and set(slots) <= set(events[-1].details["slots"].split(","))


async def test_a_firewall_refused_right_after_a_claim_fails_the_agent_and_leaves_nothing(
    stack: Stack, sim: RunningSim
) -> None:
    """The claim went through while the agent's firewall was refused: the VM was the agent's from its claim, so the
    agent's cleanup deletes it (never a pool's VM left claimed by no one), with the agent's secrets and the pool
    identity; the pool refills. The refusal outlasts the failure, so cleanup's own firewall look retries until it
    ends."""
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*WHERE, min=1, max=1, tuning=FAST)
        [ready] = [vm for vm in (await until_ready(stack, 1)).vms if vm.status == "ready"]
        sim.set_faults(provider="hetzner", endpoint="firewall", error_rate=1.0, status=422)
        try:
            agent_id = await stack.client.create_agent(
                stack.spec(provider="hetzner", region="eu-central", size="small")
            )

            async def refused() -> bool | None:
                status = await stack.client.status(agent_id)
                return True if "firewall" in status.last_error else None

            await eventually(refused, timeout_s=60, what="the firewall's refusal in the agent's status")
        finally:
            sim.set_faults(provider="hetzner", endpoint="firewall", error_rate=0.0)
        with pytest.raises(WorkflowFailureError) as failure:
            await stack.client.result(agent_id)
        assert isinstance(failure.value.cause, ApplicationError) and failure.value.cause.type == "AgentFailed"
        status = await stack.client.status(agent_id)
        assert status.state == AgentState.FAILED and "create firewall" in status.last_error
        assert status.started_from == "warm pool hetzner-eu-central-small", "the claim did go through"
        assert ready.vm_id not in {str(v["id"]) for v in sim.state()["vms"]}, "the claimed VM was deleted"
        assert stack.vault.residue(agent_id) == Residue()
        assert pool_vault(stack).pool_residue(ready.slot) == Residue()
        await until_ready(stack, 1)  # the pool made a replacement
        await stack.client.delete_pool(*WHERE)
    assert pool_vms(sim) == []
