"""Warm pool VMs against cloudsim and the real client libraries: made by slot, adopted by an agent, deleted by slot.

A pool VM carries its pool and slot labels and no agent label, so it is listed by `list_pool_vms` and never by
`find(agent)` or `list_managed` (which stay "agent VMs"); once adopted it is the agent's in every way cleanup looks.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.cloud.activities import CloudActivities
from activities.cloud.base import CloudProvider, vm_name
from activities.cloud.budget import ApiBudget, Budgeted
from activities.cloud.firewalls import FirewallProvider
from activities.cloud.pool_vms import PoolVMActivities
from activities.cloud.providers import build_providers
from activities.errors import FirewallInUse, ProviderRateLimited, ProviderRejected, ProviderUnavailable, VMLeftBehind
from contracts.bootstrap import BootstrapConfig
from contracts.firewall import firewall_rules
from contracts.identifiers import ACCOUNT_LABEL, AGENT_LABEL
from contracts.models import VMLookup
from contracts.pool import POOL_LABEL, POOL_SLOT_LABEL, AdoptRequest, PoolKey, PoolVMLookup, PoolVMRequest, pool_vm_name
from contracts.regions import IMAGES, CloudProviderName, plan
from tests.activities.cloud.conftest import bootstrap, new_agent_id, poll, sim_env, vm_request
from tests.activities.cloud.test_firewalls import attached

LOCATION = {"hetzner": "fsn1", "vultr": "fra"}
PLAN = {"hetzner": plan("hetzner", "small"), "vultr": plan("vultr", "small")}
RULES = firewall_rules(orchestrator=("203.0.113.10/32",), gateway=(), vault=("198.51.100.0/28",), ai_apis=())


@pytest.fixture(params=["hetzner", "vultr"])
def pooled(request: pytest.FixtureRequest) -> CloudProviderName:
    provider: CloudProviderName = request.param
    return provider


@pytest.fixture
def pool_adapter(pooled: str, sim: Any) -> CloudProvider:
    return build_providers([pooled], sim_env(sim))[pooled]


class _PoolIssuer:
    """Stands in for PoolVault (activities/secrets/pool_vault.py): a pool bootstrap whose agent id is the slot."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def issue_pool_bootstrap(self, slot: str) -> BootstrapConfig:
        self.issued.append(slot)
        return bootstrap(slot, pool_slot=slot)


def new_slot() -> str:
    return "pv" + secrets.token_hex(6)


def key(provider: CloudProviderName) -> PoolKey:
    return PoolKey(provider, "eu-central", "small")


def activities(adapter: CloudProvider, issuer: _PoolIssuer | None = None) -> PoolVMActivities:
    return PoolVMActivities(providers={adapter.name: adapter}, bootstrap=issuer or _PoolIssuer())


def run(fn: Any, arg: Any) -> Any:
    return ActivityEnvironment().run(fn, arg)


def sim_vm(sim: Any, provider: str, vm_id: str) -> dict[str, Any] | None:
    return next((vm for vm in sim.state()["vms"] if vm["provider"] == provider and str(vm["id"]) == vm_id), None)


def sim_names(sim: Any, provider: str, name: str) -> list[dict[str, Any]]:
    return [vm for vm in sim.state()["vms"] if vm["provider"] == provider and vm["name"] == name]


@pytest.fixture
def made(sim: Any) -> Any:
    """VM ids to delete after the test, whatever it left: (adapter, vm_id)."""
    vms: list[tuple[CloudProvider, str]] = []
    yield vms
    sim.clear_faults()
    for adapter, vm_id in vms:
        adapter.delete(vm_id)


def test_a_pool_vm_is_found_by_its_slot_and_is_no_agents_vm(
    pooled: CloudProviderName, pool_adapter: CloudProvider, sim: Any, made: list[Any]
) -> None:
    slot, issuer = new_slot(), _PoolIssuer()
    ref = run(activities(pool_adapter, issuer).create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, ref.vm_id))
    assert (ref.slot, ref.status) == (slot, "booting") and ref.vm_id
    assert issuer.issued == [slot]

    found = pool_adapter.find_pool_vm(slot)
    assert found is not None and found.vm_id == ref.vm_id
    assert (found.name, found.slot, found.pool_id, found.agent_id) == (
        pool_vm_name(slot),
        slot,
        key(pooled).pool_id,
        "",
    )
    assert ref.vm_id in {vm.vm_id for vm in pool_adapter.list_pool_vms()}
    # Not an agent's: list_managed stays agent VMs, so a count of what is left adds list_pool_vms.
    assert ref.vm_id not in {vm.vm_id for vm in pool_adapter.list_managed()}
    assert pool_adapter.find(slot) is None

    raw = sim_vm(sim, pooled, ref.vm_id)
    assert raw is not None
    if pooled == "hetzner":
        assert raw["labels"] == {POOL_LABEL: key(pooled).pool_id, POOL_SLOT_LABEL: slot}
    else:
        assert raw["tags"] == [POOL_LABEL, f"{POOL_LABEL}={key(pooled).pool_id}", f"{POOL_SLOT_LABEL}={slot}"]
    # Placed and sized as an agent's VM of the same region and size would be.
    assert (raw["location"], raw["plan"]) == (LOCATION[pooled], PLAN[pooled])


def test_a_retried_create_keeps_the_vm_instead_of_making_another(
    pooled: CloudProviderName, pool_adapter: CloudProvider, sim: Any, made: list[Any]
) -> None:
    slot, issuer = new_slot(), _PoolIssuer()
    acts = activities(pool_adapter, issuer)
    first = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, first.vm_id))
    second = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    assert second.vm_id == first.vm_id
    assert len(sim_names(sim, pooled, pool_vm_name(slot))) == 1
    assert issuer.issued == [slot]  # a kept VM gets no second pool credential


def test_a_lost_create_answer_is_kept_by_the_retry(
    pooled: CloudProviderName, pool_adapter: CloudProvider, sim: Any, made: list[Any]
) -> None:
    slot = new_slot()
    acts = activities(pool_adapter)
    sim.set_faults(provider=pooled, endpoint="create", drop_after_create=1, drop_mode="504")
    with pytest.raises(ProviderUnavailable, match="504"):
        run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    [lost] = sim_names(sim, pooled, pool_vm_name(slot))
    made.append((pool_adapter, str(lost["id"])))
    again = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    assert again.vm_id == str(lost["id"])
    assert len(sim_names(sim, pooled, pool_vm_name(slot))) == 1


async def test_wait_vm_running_waits_for_a_pool_vm_by_its_id(
    pooled: CloudProviderName, pool_adapter: CloudProvider, made: list[Any]
) -> None:
    """The pool workflow waits with the existing activity, the slot standing in for the agent id."""
    slot = new_slot()
    ref = run(activities(pool_adapter).create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, ref.vm_id))
    cloud = CloudActivities(providers={pooled: pool_adapter}, bootstrap=_NoAgentBootstrap())
    running = await ActivityEnvironment().run(cloud.wait_vm_running, VMLookup(pooled, slot, ref.vm_id))
    assert running.vm_id == ref.vm_id and running.address and running.name == pool_vm_name(slot)


class _NoAgentBootstrap:
    def issue_bootstrap(self, agent_id: str) -> BootstrapConfig:
        raise AssertionError("waiting issues no credential")


def test_adopt_makes_the_pool_vm_the_agents_in_every_way_cleanup_looks(
    pooled: CloudProviderName, pool_adapter: CloudProvider, sim: Any, made: list[Any]
) -> None:
    slot, agent_id = new_slot(), new_agent_id()
    acts = activities(pool_adapter)
    pool_vm = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, pool_vm.vm_id))
    assert isinstance(pool_adapter, FirewallProvider)
    firewall = pool_adapter.ensure_firewall(agent_id, "acct-7", RULES)
    request = AdoptRequest(pooled, pool_vm.vm_id, slot, agent_id, "acct-7", firewall.firewall_id)

    ref = run(acts.adopt_pool_vm, request)
    assert (ref.provider, ref.vm_id, ref.name) == (pooled, pool_vm.vm_id, vm_name(agent_id))
    assert ref.location == LOCATION[pooled]
    assert ref.api_calls == {"hetzner": 3, "vultr": 2}[pooled]  # the look, then PUT + apply (Hetzner) or PATCH

    found = pool_adapter.find(agent_id)
    assert found is not None and found.vm_id == pool_vm.vm_id and found.name == vm_name(agent_id)
    assert (found.agent_id, found.slot, found.pool_id) == (agent_id, "", "")
    assert pool_adapter.find_pool_vm(slot) is None
    assert pool_vm.vm_id not in {vm.vm_id for vm in pool_adapter.list_pool_vms()}
    assert pool_vm.vm_id in {vm.vm_id for vm in pool_adapter.list_managed()}
    assert attached(sim, pooled, pool_vm.vm_id, firewall.firewall_id)
    # cloudsim counts it live under its new name (a second live VM of the agent would show as 2), not as a create.
    state = sim.state()
    assert state["peak_live"][vm_name(agent_id)] == 1
    assert vm_name(agent_id) not in state["created"].get(pooled, {})
    assert state["created"][pooled][pool_vm_name(slot)] == 1

    # Exactly the labels (tags) a VM created for the agent carries.
    cold_agent = new_agent_id()
    cold = pool_adapter.create(vm_request(pooled, cold_agent), bootstrap(cold_agent))
    made.append((pool_adapter, cold.vm_id))
    adopted_raw, cold_raw = sim_vm(sim, pooled, pool_vm.vm_id), sim_vm(sim, pooled, cold.vm_id)
    assert adopted_raw is not None and cold_raw is not None
    if pooled == "hetzner":
        assert adopted_raw["labels"] == {AGENT_LABEL: agent_id, ACCOUNT_LABEL: "acct-7"}
        assert cold_raw["labels"] == {AGENT_LABEL: cold_agent, ACCOUNT_LABEL: "acct-7"}
    else:
        assert adopted_raw["tags"] == [t.replace(cold_agent, agent_id) for t in cold_raw["tags"]]
        assert adopted_raw["firewall_group_id"] == firewall.firewall_id

    # Twice is fine: a retry after success changes nothing and attaches the firewall no second time. The VM is let
    # finish booting first, so the only change the boot makes on its own (phase, status, bridge) is not counted.
    before = poll(lambda: sim_vm(sim, pooled, pool_vm.vm_id), lambda vm: vm is not None and vm["phase"] == "running")
    again = run(acts.adopt_pool_vm, request)
    assert (again.vm_id, again.name) == (ref.vm_id, ref.name)
    assert sim_vm(sim, pooled, pool_vm.vm_id) == before
    if pooled == "hetzner":
        [held] = [f for f in sim.state()["firewalls"] if str(f["id"]) == firewall.firewall_id]
        assert held["server_ids"] == [int(pool_vm.vm_id)]

    # The agent's VM is no pool's to delete any more: a pool delete by its slot (and even its id) leaves it.
    deleted = run(acts.delete_pool_vm, PoolVMLookup(pooled, slot, pool_vm.vm_id))
    assert deleted.deleted is False and pool_adapter.get(pool_vm.vm_id) is not None
    run(acts.verify_pool_vm_gone, PoolVMLookup(pooled, slot, pool_vm.vm_id))

    pool_adapter.delete(pool_vm.vm_id)
    poll(lambda: pool_adapter.get(pool_vm.vm_id), lambda vm: vm is None, what="VM gone")
    if isinstance(pool_adapter, FirewallProvider):
        poll(lambda: _deleted_firewall(pool_adapter, firewall.firewall_id), bool, what="firewall deleted")


def _deleted_firewall(adapter: FirewallProvider, firewall_id: str) -> bool:
    try:
        adapter.delete_firewall(firewall_id)
    except FirewallInUse:  # while the server is still going
        return False
    return True


def test_adopt_without_a_firewall_only_relabels(
    pooled: CloudProviderName, pool_adapter: CloudProvider, sim: Any, made: list[Any]
) -> None:
    slot, agent_id = new_slot(), new_agent_id()
    pool_vm = run(activities(pool_adapter).create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, pool_vm.vm_id))
    vm = pool_adapter.adopt(pool_vm.vm_id, agent_id, "acct-9", "")
    assert (vm.agent_id, vm.name, vm.slot) == (agent_id, vm_name(agent_id), "")
    found = pool_adapter.find(agent_id)
    assert found is not None and found.vm_id == pool_vm.vm_id


def test_adopting_a_vm_that_is_gone_fails_clearly(
    pooled: CloudProviderName, pool_adapter: CloudProvider, made: list[Any]
) -> None:
    slot, agent_id = new_slot(), new_agent_id()
    acts = activities(pool_adapter)
    pool_vm = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    assert pool_adapter.delete(pool_vm.vm_id)
    poll(lambda: pool_adapter.get(pool_vm.vm_id), lambda vm: vm is None, what="VM gone")

    with pytest.raises(ProviderRejected, match=f"VM {pool_vm.vm_id} .*gone") as failure:
        run(acts.adopt_pool_vm, AdoptRequest(pooled, pool_vm.vm_id, slot, agent_id, "acct-7"))
    assert not failure.value.retryable
    # The adapter alone says the same (its own answer from the provider, not the activity's look).
    with pytest.raises(ProviderRejected, match=f"VM {pool_vm.vm_id} is gone") as direct:
        pool_adapter.adopt(pool_vm.vm_id, agent_id, "acct-7", "")
    assert not direct.value.retryable
    assert pool_adapter.find(agent_id) is None


def test_adopt_refuses_a_vm_of_another_slot_or_agent(
    pooled: CloudProviderName, pool_adapter: CloudProvider, made: list[Any]
) -> None:
    slot, agent_id = new_slot(), new_agent_id()
    acts = activities(pool_adapter)
    pool_vm = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, pool_vm.vm_id))
    with pytest.raises(ProviderRejected, match="is not pool slot"):
        run(acts.adopt_pool_vm, AdoptRequest(pooled, pool_vm.vm_id, new_slot(), agent_id, "acct-7"))
    run(acts.adopt_pool_vm, AdoptRequest(pooled, pool_vm.vm_id, slot, agent_id, "acct-7"))
    # Now the agent's: another agent's claim naming the same id is refused, never relabelled.
    with pytest.raises(ProviderRejected, match="is not pool slot"):
        run(acts.adopt_pool_vm, AdoptRequest(pooled, pool_vm.vm_id, slot, new_agent_id(), "acct-7"))
    found = pool_adapter.find(agent_id)
    assert found is not None and found.vm_id == pool_vm.vm_id


def test_a_429_during_adopt_is_classified_like_any_other_call(
    pooled: CloudProviderName, pool_adapter: CloudProvider, sim: Any, made: list[Any]
) -> None:
    slot, agent_id = new_slot(), new_agent_id()
    pool_vm = run(activities(pool_adapter).create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, pool_vm.vm_id))
    sim.set_faults(provider=pooled, endpoint="update", storm_429=1, retry_after_s=2)
    with pytest.raises(ProviderRateLimited) as limited:
        pool_adapter.adopt(pool_vm.vm_id, agent_id, "acct-7", "")
    assert limited.value.retryable and limited.value.retry_after_s >= 1
    assert pool_adapter.find(agent_id) is None  # refused: nothing changed
    vm = pool_adapter.adopt(pool_vm.vm_id, agent_id, "acct-7", "")
    assert vm.agent_id == agent_id


def test_a_429_on_the_firewall_after_the_rename_is_completed_by_the_retry(sim: Any, made: list[Any]) -> None:
    """Hetzner adopts in two requests; an attempt cut short between them leaves a renamed VM that the retry finishes."""
    adapter = build_providers(["hetzner"], sim_env(sim))["hetzner"]
    assert isinstance(adapter, FirewallProvider)
    slot, agent_id = new_slot(), new_agent_id()
    acts = activities(adapter)
    pool_vm = run(acts.create_pool_vm, PoolVMRequest(key("hetzner"), slot))
    made.append((adapter, pool_vm.vm_id))
    firewall = adapter.ensure_firewall(agent_id, "acct-7", RULES)
    request = AdoptRequest("hetzner", pool_vm.vm_id, slot, agent_id, "acct-7", firewall.firewall_id)
    sim.set_faults(provider="hetzner", endpoint="firewall", storm_429=1, retry_after_s=1)
    with pytest.raises(ProviderRateLimited):
        run(acts.adopt_pool_vm, request)
    assert not attached(sim, "hetzner", pool_vm.vm_id, firewall.firewall_id)
    run(acts.adopt_pool_vm, request)  # the VM is already the agent's by name: the retry still adopts and applies
    assert attached(sim, "hetzner", pool_vm.vm_id, firewall.firewall_id)


def test_delete_by_slot_then_verify(pooled: CloudProviderName, pool_adapter: CloudProvider, made: list[Any]) -> None:
    slot = new_slot()
    acts = activities(pool_adapter)
    pool_vm = run(acts.create_pool_vm, PoolVMRequest(key(pooled), slot))
    made.append((pool_adapter, pool_vm.vm_id))
    with pytest.raises(VMLeftBehind, match=pool_vm.vm_id):
        run(acts.verify_pool_vm_gone, PoolVMLookup(pooled, slot, pool_vm.vm_id))
    deleted = run(acts.delete_pool_vm, PoolVMLookup(pooled, slot))  # no id: found by its slot label
    assert (deleted.deleted, deleted.vm_ids, deleted.api_calls) == (True, [pool_vm.vm_id], 2)
    again = run(acts.delete_pool_vm, PoolVMLookup(pooled, slot, pool_vm.vm_id))
    assert (again.deleted, again.vm_ids) == (False, [])  # gone already: success
    residue = run(acts.verify_pool_vm_gone, PoolVMLookup(pooled, slot, pool_vm.vm_id))
    assert (residue.total, residue.api_calls) == (0, 1)


def test_a_stopped_pool_vm_is_replaced(sim: Any, made: list[Any]) -> None:
    """A powered-off server holding the slot will not become ready by waiting: the create replaces it."""
    adapter = build_providers(["hetzner"], sim_env(sim))["hetzner"]
    slot, issuer = new_slot(), _PoolIssuer()
    body = {
        "name": pool_vm_name(slot),
        "server_type": PLAN["hetzner"],
        "image": IMAGES["hetzner"],
        "location": LOCATION["hetzner"],
        "labels": {POOL_LABEL: key("hetzner").pool_id, POOL_SLOT_LABEL: slot},
        "start_after_create": False,
    }
    with httpx.Client(base_url=sim.hetzner_url, headers={"Authorization": f"Bearer {sim.tokens['hetzner']}"}) as c:
        off_id = str(c.post("/servers", json=body).json()["server"]["id"])
    made.append((adapter, off_id))
    poll(lambda: adapter.find_pool_vm(slot), lambda vm: vm is not None and vm.status == "stopped", what="off")

    ref = run(activities(adapter, issuer).create_pool_vm, PoolVMRequest(key("hetzner"), slot))
    made.append((adapter, ref.vm_id))
    assert ref.vm_id != off_id and adapter.get(off_id) is None
    assert [str(vm["id"]) for vm in sim_names(sim, "hetzner", pool_vm_name(slot))] == [ref.vm_id]
    assert issuer.issued == [slot]


@pytest.mark.parametrize("provider", ["digitalocean", "local"])
def test_providers_without_pools_refuse_clearly(provider: str, sim: Any, tmp_path: Any) -> None:
    from activities.cloud.local import LocalProvider

    adapter: CloudProvider = (
        LocalProvider(state_dir=tmp_path)
        if provider == "local"
        else build_providers([provider], sim_env(sim))[provider]
    )
    reason = f"no warm pools on {provider}"
    with pytest.raises(ProviderRejected, match=reason) as refused:
        adapter.create_pool_vm(PoolKey(adapter.name, "eu-central", "small"), new_slot(), "", bootstrap("x"))
    assert not refused.value.retryable
    with pytest.raises(ProviderRejected, match=reason):
        adapter.adopt("1", new_agent_id(), "acct-7", "")
    # No pool VM can exist there: nothing to find or list, so a sweep over every provider need not skip them.
    assert adapter.find_pool_vm(new_slot()) is None and adapter.list_pool_vms() == []

    issuer = _PoolIssuer()
    acts = PoolVMActivities(providers={provider: adapter}, bootstrap=issuer)
    with pytest.raises(ProviderRejected, match=reason):
        run(acts.create_pool_vm, PoolVMRequest(PoolKey(adapter.name, "eu-central", "small"), new_slot()))
    assert issuer.issued == []  # refused before a pool credential was minted


def test_a_budgeted_adopt_waits_out_a_429_and_then_adopts(sim: Any, made: list[Any]) -> None:
    """Through the worker's budget (activities/cloud/budget.py) a 429 on the rename holds the call, then it is made."""
    inner = build_providers(["hetzner"], sim_env(sim))["hetzner"]
    adapter = Budgeted(inner, ApiBudget("hetzner", 100.0))
    slot, agent_id = new_slot(), new_agent_id()
    pool_vm = run(activities(adapter).create_pool_vm, PoolVMRequest(key("hetzner"), slot))
    made.append((adapter, pool_vm.vm_id))
    storms = int(sim.state()["injected"].get("hetzner", {}).get("storm_429", 0))
    sim.set_faults(provider="hetzner", endpoint="update", storm_429=1, retry_after_s=1)
    ref = run(activities(adapter).adopt_pool_vm, AdoptRequest("hetzner", pool_vm.vm_id, slot, agent_id, "acct-7"))
    assert ref.name == vm_name(agent_id)
    assert int(sim.state()["injected"]["hetzner"]["storm_429"]) - storms == 1
