"""The providers' firewall endpoints in cloudsim, driven by the real clients (hcloud, python-digitalocean, httpx)."""

from __future__ import annotations

import digitalocean
import httpx
import pytest
from hcloud import APIException, Client
from hcloud.firewalls import Firewall, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import Server

from cloudsim.testing import RunningSim


def hcloud(sim: RunningSim) -> Client:
    return Client(token=sim.tokens["hetzner"], api_endpoint=sim.hetzner_url, poll_interval=0.05)


def test_hetzner_firewall_is_applied_at_server_create_and_cannot_be_deleted_while_applied(sim: RunningSim) -> None:
    c = hcloud(sim)
    rules = [FirewallRule(direction="in", protocol="tcp", source_ips=["192.0.2.0/24"], port="8787")]
    labels = {"lobstack-agent": "a1"}
    # hcloud 2.27 annotates `labels` as str, documents and sends a dict.
    made = c.firewalls.create(name="lobstack-a1", rules=rules, labels=labels)  # type: ignore[arg-type]  # see above
    firewall = made.firewall
    assert firewall.id is not None and firewall.rules is not None
    assert [(r.direction, r.port, r.source_ips) for r in firewall.rules] == [("in", "8787", ["192.0.2.0/24"])]
    c.firewalls.create(name="other", labels={"lobstack-agent": "b2"})  # type: ignore[arg-type]  # see above
    assert [f.name for f in c.firewalls.get_all(label_selector="lobstack-agent=a1")] == ["lobstack-a1"]
    with pytest.raises(APIException) as taken:
        c.firewalls.create(name="lobstack-a1")
    assert taken.value.code == "uniqueness_error"

    server = c.servers.create(
        name="lobstack-a1",
        server_type=ServerType(name="cpx11"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name="hel1"),
        firewalls=[Firewall(id=firewall.id)],
    ).server
    assert server.public_net is not None and server.public_net.firewalls is not None and server.id is not None
    assert [f.firewall.id for f in server.public_net.firewalls] == [firewall.id]
    applied = c.firewalls.get_by_id(firewall.id).applied_to
    assert applied is not None and [a.server.id for a in applied if a.server] == [server.id]

    with pytest.raises(APIException) as in_use:
        c.firewalls.delete(Firewall(id=firewall.id))
    assert in_use.value.code == "resource_in_use"

    c.servers.delete(Server(id=server.id))
    assert c.firewalls.get_by_id(firewall.id).applied_to == []
    assert c.firewalls.delete(Firewall(id=firewall.id)) is True
    with pytest.raises(APIException) as gone:
        c.firewalls.get_by_id(firewall.id)
    assert gone.value.code == "not_found"


def test_hetzner_refuses_a_rule_without_addresses_and_a_server_with_an_unknown_firewall(sim: RunningSim) -> None:
    c = hcloud(sim)
    with pytest.raises(APIException) as bad_rule:
        c.firewalls.create(name="x", rules=[FirewallRule(direction="in", protocol="tcp", source_ips=[], port="22")])
    assert bad_rule.value.code == "invalid_input"
    with pytest.raises(APIException) as unknown:
        c.servers.create(
            name="y",
            server_type=ServerType(name="cpx11"),
            image=Image(name="ubuntu-24.04"),
            location=Location(name="hel1"),
            firewalls=[Firewall(id=123)],
        )
    assert unknown.value.code == "invalid_input"
    assert sim.state()["vms"] == []


def test_digitalocean_firewall_keeps_rules_and_tags_and_deletes(sim: RunningSim) -> None:
    sdk = {"token": sim.tokens["digitalocean"], "end_point": sim.digitalocean_url}
    firewall = digitalocean.Firewall(
        name="lobstack-a1",
        tags=["lobstack-agent:a1"],
        inbound_rules=[
            digitalocean.InboundRule(
                protocol="tcp", ports="8787", sources=digitalocean.Sources(addresses=["192.0.2.0/24"])
            )
        ],
        outbound_rules=[
            digitalocean.OutboundRule(
                protocol="tcp", ports="1-65535", destinations=digitalocean.Destinations(addresses=["198.51.100.7/32"])
            )
        ],
        **sdk,
    ).create()
    assert firewall.id and firewall.tags == ["lobstack-agent:a1"]
    loaded = digitalocean.Firewall(id=firewall.id, **sdk).load()
    assert [r.ports for r in loaded.inbound_rules] == ["8787"]
    assert [r.destinations.addresses for r in loaded.outbound_rules] == [["198.51.100.7/32"]]
    listed = digitalocean.Manager(**sdk).get_all_firewalls()
    assert [f.name for f in listed] == ["lobstack-a1"]

    digitalocean.Firewall(id=firewall.id, **sdk).destroy()
    with pytest.raises(digitalocean.NotFoundError):
        digitalocean.Firewall(id=firewall.id, **sdk).load()


def test_vultr_firewall_group_rules_and_instance_count(sim: RunningSim) -> None:
    api = httpx.Client(base_url=sim.vultr_url + "/", headers={"Authorization": f"Bearer {sim.tokens['vultr']}"})
    group = api.post("firewalls", json={"description": "lobstack-agent=a1"})
    assert group.status_code == 201
    group_id = group.json()["firewall_group"]["id"]
    rule = {"ip_type": "v4", "protocol": "tcp", "subnet": "192.0.2.0", "subnet_size": 24, "port": "8787"}
    assert api.post(f"firewalls/{group_id}/rules", json=rule).status_code == 201
    bad = api.post(f"firewalls/{group_id}/rules", json={**rule, "ip_type": "v6"})
    assert bad.status_code == 400
    rules = api.get(f"firewalls/{group_id}/rules").json()["firewall_rules"]
    assert [(r["subnet"], r["subnet_size"], r["port"]) for r in rules] == [("192.0.2.0", 24, "8787")]

    body = {"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2284, "label": "lobstack-a1", "firewall_group_id": group_id}
    instance = api.post("instances", json=body)
    assert instance.status_code == 202
    assert instance.json()["instance"]["firewall_group_id"] == group_id
    listed = api.get("firewalls").json()["firewall_groups"]
    assert [(g["description"], g["instance_count"], g["rule_count"]) for g in listed] == [("lobstack-agent=a1", 1, 1)]
    assert api.post("instances", json={**body, "firewall_group_id": "no-such-group"}).status_code == 400

    assert api.delete(f"firewalls/{group_id}").status_code == 204
    assert api.get(f"firewalls/{group_id}").status_code == 404
