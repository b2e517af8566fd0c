"""The adapters' firewalls against cloudsim: made once, attached at create, deleted once the VM is gone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

from activities.cloud.base import CloudProvider
from activities.cloud.budget import ApiBudget, Budgeted
from activities.cloud.firewalls import FirewallProvider
from activities.errors import FirewallInUse
from contracts.bootstrap import BRIDGE_PORT
from contracts.firewall import firewall_rules
from tests.activities.cloud.conftest import bootstrap, new_agent_id, vm_request

RULES = firewall_rules(
    orchestrator=("203.0.113.10/32",), gateway=("203.0.113.20/32",), vault=("198.51.100.0/28",), ai_apis=()
)


def api(sim: Any, provider: str) -> httpx.Client:
    base = {"hetzner": sim.hetzner_url, "digitalocean": sim.digitalocean_url, "vultr": sim.vultr_url}[provider]
    return httpx.Client(base_url=base.rstrip("/") + "/", headers={"Authorization": f"Bearer {sim.tokens[provider]}"})


def as_firewalls(adapter: CloudProvider) -> FirewallProvider:
    assert isinstance(adapter, FirewallProvider)
    return adapter


def attached(sim: Any, provider: str, vm_id: str, firewall_id: str) -> bool:
    """Read back from the provider's own API that the VM is covered by the firewall."""
    with api(sim, provider) as http:
        if provider == "hetzner":
            server = http.get(f"servers/{vm_id}").json()["server"]
            return [f["id"] for f in server["public_net"]["firewalls"]] == [int(firewall_id)]
        if provider == "digitalocean":
            droplet = http.get(f"droplets/{vm_id}").json()["droplet"]
            firewall = http.get(f"firewalls/{firewall_id}").json()["firewall"]
            return bool(set(firewall["tags"]) & set(droplet["tags"]))
        instance = http.get(f"instances/{vm_id}").json()["instance"]
        return bool(instance["firewall_group_id"] == firewall_id)


def test_ensure_is_idempotent_and_the_vm_is_covered_from_its_create(adapter: CloudProvider, sim: Any) -> None:
    firewalls = as_firewalls(adapter)
    agent_id = new_agent_id()
    first = firewalls.ensure_firewall(agent_id, "acct-7", RULES)
    again = firewalls.ensure_firewall(agent_id, "acct-7", RULES)
    assert again == first and first.agent_id == agent_id
    assert firewalls.find_firewalls(agent_id) == [first]
    assert first in firewalls.list_managed_firewalls()
    assert firewalls.find_firewalls(new_agent_id()) == []

    request = replace(vm_request(adapter.name, agent_id), firewall_id=first.firewall_id)
    vm = adapter.create(request, bootstrap(agent_id))
    assert attached(sim, adapter.name, vm.vm_id, first.firewall_id)

    if adapter.name == "hetzner":
        # Documented: a firewall still applied to a server is not deleted (422 resource_in_use).
        with pytest.raises(FirewallInUse):
            firewalls.delete_firewall(first.firewall_id)
    assert adapter.delete(vm.vm_id)
    assert firewalls.delete_firewall(first.firewall_id) is True
    assert firewalls.delete_firewall(first.firewall_id) is False
    assert firewalls.find_firewalls(agent_id) == []


def test_rules_admit_the_bridge_port_only_and_never_ssh(adapter: CloudProvider, sim: Any) -> None:
    agent_id = new_agent_id()
    made = as_firewalls(adapter).ensure_firewall(agent_id, "acct-7", RULES)
    with api(sim, adapter.name) as http:
        if adapter.name == "hetzner":
            rules = http.get(f"firewalls/{made.firewall_id}").json()["firewall"]["rules"]
            inbound = [(r["port"], r["source_ips"]) for r in rules if r["direction"] == "in"]
            outbound = [r["destination_ips"] for r in rules if r["direction"] == "out"]
        elif adapter.name == "digitalocean":
            firewall = http.get(f"firewalls/{made.firewall_id}").json()["firewall"]
            inbound = [(r["ports"], r["sources"]["addresses"]) for r in firewall["inbound_rules"]]
            outbound = [r["destinations"]["addresses"] for r in firewall["outbound_rules"]]
        else:
            rules = http.get(f"firewalls/{made.firewall_id}/rules").json()["firewall_rules"]
            inbound = [(r["port"], [f"{r['subnet']}/{r['subnet_size']}"]) for r in rules]
            # Vultr firewall groups filter inbound traffic only.
            outbound = [["198.51.100.0/28", "203.0.113.20/32"]]
    sources = sorted(cidr for _port, cidrs in inbound for cidr in cidrs)
    assert sources == ["203.0.113.10/32", "203.0.113.20/32"]
    assert {port for port, _cidrs in inbound} == {str(BRIDGE_PORT)}
    assert outbound == [["198.51.100.0/28", "203.0.113.20/32"]]
    assert as_firewalls(adapter).delete_firewall(made.firewall_id)


def test_a_vultr_group_cut_short_gets_its_missing_rules_on_the_next_ensure(sim: Any) -> None:
    from activities.cloud.providers import vultr_from_env

    adapter = vultr_from_env(sim.env())
    agent_id = new_agent_id()
    with api(sim, "vultr") as http:
        group_id = http.post("firewalls", json={"description": f"lobstack-agent={agent_id}"}).json()["firewall_group"][
            "id"
        ]
        made = adapter.ensure_firewall(agent_id, "acct-7", RULES)
        assert made.firewall_id == group_id
        rules = http.get(f"firewalls/{group_id}/rules").json()["firewall_rules"]
    assert len(rules) == 2
    adapter.ensure_firewall(agent_id, "acct-7", RULES)
    with api(sim, "vultr") as http:
        assert len(http.get(f"firewalls/{group_id}/rules").json()["firewall_rules"]) == 2
    assert adapter.delete_firewall(group_id)


def test_a_budgeted_adapter_passes_firewalls_on(sim: Any) -> None:
    from activities.cloud.providers import hetzner_from_env

    budgeted = Budgeted(hetzner_from_env(sim.env()), ApiBudget.for_provider("hetzner", {}))
    firewalls = as_firewalls(budgeted)
    agent_id = new_agent_id()
    made = firewalls.ensure_firewall(agent_id, "acct-7", RULES)
    assert firewalls.find_firewalls(agent_id) == [made]
    assert firewalls.delete_firewall(made.firewall_id)
