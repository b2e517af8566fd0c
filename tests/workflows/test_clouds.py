"""Lifecycles on the three clouds through their real SDKs, against cloudsim, with the faults real clouds have."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from activities.cloud.base import CloudProvider, vm_name
from cloudsim.testing import RunningSim
from contracts.firewall import firewall_description
from contracts.models import AgentState, Residue
from contracts.regions import CLOUD_PROVIDERS
from contracts.spec import SpecError
from tests.stack import Stack
from workers.settings import WorkerSettings
from workers.worker import default_providers

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Tests shrink nothing about the APIs, but give the client-side budget room so a suite of lifecycles is not paced
# at one call per second; the budget itself is exercised by the 429 test and the benchmarks.
FAST = {f"LOBSTACK_API_BUDGET_{name.upper()}": "200" for name in CLOUD_PROVIDERS}


def clouds(sim: RunningSim, stack: Stack, **env_overrides: str) -> dict[str, CloudProvider]:
    env = {**sim.env(), **FAST, **env_overrides}
    settings = WorkerSettings(home=stack.local.state_dir, providers=CLOUD_PROVIDERS)
    return default_providers(settings, env)


def sim_vms(sim: RunningSim, agent_id: str) -> list[dict[str, Any]]:
    return [vm for vm in sim.state()["vms"] if vm["name"] == vm_name(agent_id)]


def sim_firewalls(sim: RunningSim, agent_id: str) -> list[dict[str, Any]]:
    """The agent's firewalls as cloudsim holds them: by name (Hetzner, DigitalOcean) or description (Vultr)."""
    ours = {vm_name(agent_id), firewall_description(agent_id)}
    return [f for f in sim.state()["firewalls"] if f["name"] in ours or f["description"] in ours]


def assert_clean(stack: Stack, sim: RunningSim, agent_id: str) -> None:
    assert stack.vault.residue(agent_id) == Residue()
    assert sim_vms(sim, agent_id) == []
    assert sim_firewalls(sim, agent_id) == []


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
async def test_full_lifecycle(stack: Stack, sim: RunningSim, provider: str) -> None:
    # The first status look waits for a typical boot above the simulator's 0.2 s, so one look sees the VM running.
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={provider: 1.0}):
        agent_id = await stack.client.create_agent(stack.spec(provider=provider, region="ap-southeast"))
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=90)
        [vm] = sim_vms(sim, agent_id)
        assert running.provider == provider and running.vm_id == str(vm["id"])
        assert running.address == f"http://{vm['ip']}:8787" and running.health == "healthy"
        assert running.location == {"hetzner": "sin", "digitalocean": "sgp1", "vultr": "sgp"}[provider]
        assert vm["bridge_pid"], "the simulated VM runs the real bridge"
        [firewall] = sim_firewalls(sim, agent_id)
        assert firewall["provider"] == provider
        await stack.client.destroy(agent_id)
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.DESTROYED
    # A look-up and the create, one status look, delete by id, one look-up proving it gone.
    assert result.api_calls == 5
    assert_clean(stack, sim, agent_id)


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
async def test_dropped_create_response_is_adopted_not_duplicated(stack: Stack, sim: RunningSim, provider: str) -> None:
    sim.set_faults(provider=provider, endpoint="create", drop_after_create=1)
    async with stack.workers(providers=clouds(sim, stack)):
        agent_id = await stack.client.create_agent(stack.spec(provider=provider))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        assert len(sim_vms(sim, agent_id)) == 1
        assert sim.state()["calls"][provider]["create"] >= 1
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    assert_clean(stack, sim, agent_id)


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
async def test_429_storm_waits_for_the_reset_and_succeeds(stack: Stack, sim: RunningSim, provider: str) -> None:
    before = sim.state()["rate_limited"].get(provider, 0)
    sim.set_faults(provider=provider, endpoint="create", storm_429=2, retry_after_s=1)
    async with stack.workers(providers=clouds(sim, stack)):
        agent_id = await stack.client.create_agent(stack.spec(provider=provider))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    # Exactly the storm's 429s: the retries waited for the reset instead of hammering the API into more of them.
    assert sim.state()["rate_limited"].get(provider, 0) - before == 2
    assert_clean(stack, sim, agent_id)


async def test_capacity_error_fails_over_and_is_audited(stack: Stack, sim: RunningSim) -> None:
    sim.set_faults(provider="hetzner", endpoint="create", capacity=True)
    async with stack.workers(providers=clouds(sim, stack)):
        agent_id = await stack.client.create_agent(stack.spec(provider="auto", region="eu-central"))
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        assert running.provider == "digitalocean" and running.location == "fra1"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    failovers = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "vm.failover"]
    # Hetzner serves eu-central from two substitutes: both refused, each attempt audited.
    assert [(e.details["provider"], e.details["location"]) for e in failovers] == [
        ("hetzner", "fsn1"),
        ("hetzner", "nbg1"),
    ]
    assert all(e.details["error"] == "ProviderCapacityError" for e in failovers)
    assert_clean(stack, sim, agent_id)


async def test_strict_account_never_gets_a_substitute(stack: Stack, sim: RunningSim) -> None:
    hetzner_creates = sim.state()["calls"].get("hetzner", {}).get("create", 0)
    with pytest.raises(SpecError, match="region"):
        await stack.client.create_agent(stack.spec(provider="hetzner", region="eu-central", strict_region=True))
    sim.set_faults(provider="hetzner", endpoint="create", capacity=True)
    async with stack.workers(providers=clouds(sim, stack)):
        # auto + strict: Hetzner's Frankfurt substitutes are skipped entirely; the exact location wins.
        agent_id = await stack.client.create_agent(stack.spec(provider="auto", region="eu-central", strict_region=True))
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        assert (running.provider, running.location) == ("digitalocean", "fra1")
        assert sim.state()["calls"].get("hetzner", {}).get("create", 0) == hetzner_creates, "a substitute was tried"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    assert not [e for e in stack.registry.events(agent_id=agent_id) if e.action == "vm.failover"]
    assert_clean(stack, sim, agent_id)


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
async def test_vm_deleted_behind_our_back_still_destroys_cleanly(stack: Stack, sim: RunningSim, provider: str) -> None:
    providers = clouds(sim, stack)
    async with stack.workers(providers=providers):
        agent_id = await stack.client.create_agent(stack.spec(provider=provider))
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=90)
        assert providers[provider].delete(running.vm_id) is True  # someone deleted it in the console
        await stack.client.destroy(agent_id)
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.DESTROYED
    assert_clean(stack, sim, agent_id)


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
async def test_bad_token_fails_clearly_and_cleans_up_secrets(stack: Stack, sim: RunningSim, provider: str) -> None:
    variable = {"hetzner": "HCLOUD_TOKEN", "digitalocean": "DIGITALOCEAN_ACCESS_TOKEN", "vultr": "VULTR_API_KEY"}
    bad = "not-a-valid-token-0123456789"
    before = dict(sim.state()["calls"].get(provider, {}))
    async with stack.workers(providers=clouds(sim, stack, **{variable[provider]: bad})):
        agent_id = await stack.client.create_agent(stack.spec(provider=provider))
        with pytest.raises(WorkflowFailureError) as failure:
            await stack.client.result(agent_id)
        status = await stack.client.status(agent_id)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "AgentFailed"
    assert status.state == AgentState.FAILED and "401" in status.last_error and bad not in status.last_error
    # Not retryable: each refused call is made once (the catalog read pricing the agent at admission, then the first
    # call making its firewall), nothing was created, so cleanup had nothing to delete.
    after = sim.state()["calls"].get(provider, {})
    made = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    assert made == {"catalog": 1, "firewall": 1}
    assert_clean(stack, sim, agent_id)
