"""OrphanSweep: a TERMINATED lifecycle (no cleanup ran) leaves a VM and Vault state; the sweep removes exactly those."""

from __future__ import annotations

from typing import Any

import pytest

from activities.cloud.base import vm_name
from activities.cloud.firewalls import FirewallProvider
from activities.cloud.local import pid_alive
from activities.secrets.agent_data import AgentDataStore
from cloudsim.testing import RunningSim
from contracts.firewall import firewall_description, rules_from_env
from contracts.identifiers import workflow_id
from contracts.maintenance_models import SweepInput, SweepResult
from contracts.models import AgentState, Residue
from tests.maintenance.helpers import run_now
from tests.stack import Stack
from workers.settings import WorkerSettings
from workers.worker import default_providers
from workflows.orphan_sweep import OrphanSweepWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def sim_vms(sim: RunningSim, agent_id: str) -> list[dict[str, Any]]:
    return [vm for vm in sim.state()["vms"] if vm["name"] == vm_name(agent_id)]


def sim_firewalls(sim: RunningSim, agent_id: str) -> list[dict[str, Any]]:
    return [f for f in sim.state()["firewalls"] if f["description"] == firewall_description(agent_id)]


async def test_sweep_removes_what_a_terminated_lifecycle_left_and_nothing_else(stack: Stack, sim: RunningSim) -> None:
    env = {**sim.env(), "LOBSTACK_API_BUDGET_VULTR": "200"}
    providers = {
        "local": stack.local,
        **default_providers(WorkerSettings(home=stack.local.state_dir, providers=("vultr",)), env),
    }
    data = AgentDataStore(stack.vault, stack.registry)
    async with stack.workers(providers=providers):
        dead = await stack.client.create_agent(stack.spec())
        dead_cloud = await stack.client.create_agent(stack.spec(provider="vultr", region="us-east"))
        alive = await stack.client.create_agent(stack.spec())
        for agent_id in (dead, dead_cloud, alive):
            await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=90)
            data.put(agent_id, "acme", "api-credential", b"customer-value")
        dead_pid = stack.local.pid_of(dead)
        for agent_id in (dead, dead_cloud):
            await stack.temporal.get_workflow_handle(workflow_id(agent_id)).terminate(reason="test: no cleanup")
        assert stack.vault.residue(dead).total > 0 and stack.vms_of(dead) == 1 and len(sim_vms(sim, dead_cloud)) == 1
        assert len(sim_firewalls(sim, dead_cloud)) == 1
        # A firewall alone, of an agent nothing else names (its lifecycle lost before the VM was made).
        vultr = providers["vultr"]
        assert isinstance(vultr, FirewallProvider)
        lonely = "lonely-" + dead_cloud[-8:]
        vultr.ensure_firewall(lonely, "acme", rules_from_env({}))

        # Dry run: reports both orphans, changes nothing.
        report: SweepResult = await run_now(stack, OrphanSweepWorkflow.run, SweepInput(dry_run=True), "sweep")
        assert report.dry_run and {dead, dead_cloud} <= set(report.found.agent_ids)
        assert alive not in report.found.agent_ids
        assert report.found.vms >= 2 and report.found.policies >= 2 and report.found.data >= 2
        assert lonely in report.found.agent_ids and report.found.firewalls >= 2
        assert len(sim_firewalls(sim, dead_cloud)) == 1 and len(sim_firewalls(sim, lonely)) == 1
        assert report.found.tokens >= 2, "each orphan's VM logged in; its token counts as residue"
        assert stack.vms_of(dead) == 1 and len(sim_vms(sim, dead_cloud)) == 1
        assert stack.vault.residue(dead).total > 0 and len(stack.registry.agent_data_of(dead)) == 1
        assert not [e for e in stack.registry.events(agent_id=dead) if e.action == "orphan.swept"]

        swept: SweepResult = await run_now(stack, OrphanSweepWorkflow.run, SweepInput(), "sweep")
        assert not swept.dry_run and {dead, dead_cloud} <= set(swept.found.agent_ids)
        for agent_id in (dead, dead_cloud):
            assert stack.vault.residue(agent_id) == Residue(), f"vault residue of {agent_id}"
            assert stack.registry.agent_data_of(agent_id) == []
            [event] = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "orphan.swept"]
            assert event.actor == "orphan-sweep" and event.details["vms"] == "1" and event.details["policies"] == "1"
            record = stack.registry.get(agent_id)
            assert record is not None and record.state == AgentState.DESTROYED
        assert stack.vms_of(dead) == 0 and dead_pid is not None and not pid_alive(dead_pid)
        assert sim_vms(sim, dead_cloud) == []
        assert sim_firewalls(sim, dead_cloud) == [] and sim_firewalls(sim, lonely) == []
        [event] = [e for e in stack.registry.events(agent_id=dead_cloud) if e.action == "orphan.swept"]
        assert event.details["firewalls"] == "1"

        # The running lifecycle's agent is untouched.
        status = await stack.client.status(alive)
        assert status.state == AgentState.RUNNING and stack.vms_of(alive) == 1
        residue = stack.vault.residue(alive)
        assert (residue.policies, residue.roles, residue.keys, residue.tokens) == (1, 2, 1, 1)  # AppRole, PKI
        assert data.get(alive, "api-credential") == b"customer-value"
        assert alive not in swept.found.agent_ids

        await stack.client.destroy(alive)
        await stack.client.result(alive)
