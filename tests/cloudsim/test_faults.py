"""Injected faults: lost create answers, capacity errors, 5xx bodies the SDKs parse, delays, determinism."""

from __future__ import annotations

import time

import digitalocean
import httpx
import pytest
import requests
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import CreateServerResponse

from cloudsim.testing import RunningSim
from tests.cloudsim.conftest import VPC_UUID, sim_vms


@pytest.fixture(autouse=True)
def do_endpoint(sim: RunningSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", sim.digitalocean_url)


def hcloud(sim: RunningSim) -> Client:
    return Client(token=sim.tokens["hetzner"], api_endpoint=sim.hetzner_url, poll_interval=0.05)


def hetzner_create(sim: RunningSim, name: str, location: str = "hel1") -> CreateServerResponse:
    return hcloud(sim).servers.create(
        name=name,
        server_type=ServerType(name="cpx11"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name=location),
        labels={"lobstack-agent": name},
    )


def droplet(sim: RunningSim, name: str, region: str = "fra1") -> digitalocean.Droplet:
    return digitalocean.Droplet(
        token=sim.tokens["digitalocean"],
        name=name,
        region=region,
        size_slug="s-1vcpu-2gb",
        image="ubuntu-24-04-x64",
        vpc_uuid=VPC_UUID,  # the SDK would post null, which the API refuses
    )


def vultr(sim: RunningSim) -> httpx.Client:
    return httpx.Client(base_url=sim.vultr_url, headers={"Authorization": f"Bearer {sim.tokens['vultr']}"})


VULTR_BODY = {"region": "fra", "plan": "vc2-1c-2gb", "os_id": 2284, "label": "dup", "tags": ["lobstack-agent:dup"]}


def test_drop_after_create_connection_lost(sim: RunningSim) -> None:
    sim.set_faults(provider="hetzner", endpoint="create", drop_after_create=1, drop_mode="close")
    with pytest.raises(requests.exceptions.RequestException):
        hetzner_create(sim, "lost-answer")
    # The VM exists although the client saw an error: the duplicate trap.
    assert [vm["name"] for vm in sim_vms(sim, "hetzner")] == ["lost-answer"]
    assert [s.name for s in hcloud(sim).servers.get_all(label_selector="lobstack-agent=lost-answer")] == ["lost-answer"]
    assert sim.state()["created"] == {"hetzner": {"lost-answer": 1}}
    assert sim.state()["injected"] == {"hetzner": {"dropped": 1}}


def test_created_counts_every_create_of_a_name_even_after_delete(sim: RunningSim) -> None:
    # The chaos run's duplicate check: a second create of one agent's VM shows even when both were deleted.
    first = hetzner_create(sim, "twice")
    hcloud(sim).servers.delete(first.server)
    hetzner_create(sim, "twice")
    hetzner_create(sim, "once")
    assert sim.state()["created"] == {"hetzner": {"twice": 2, "once": 1}}
    sim.reset()
    assert sim.state()["created"] == {}


def test_drop_after_create_504_and_hcloud_internal_retry(sim: RunningSim) -> None:
    # hcloud retries a `timeout` error by itself; its second create then meets the first one's name.
    sim.set_faults(provider="hetzner", endpoint="create", drop_after_create=1)
    with pytest.raises(APIException) as excinfo:
        hetzner_create(sim, "retried")
    assert excinfo.value.code == "uniqueness_error"
    assert len(sim_vms(sim, "hetzner")) == 1
    assert sim.state()["calls"]["hetzner"]["create"] == 2


def test_drop_after_create_digitalocean_and_vultr(sim: RunningSim) -> None:
    sim.set_faults(provider="digitalocean", endpoint="create", drop_after_create=1)
    with pytest.raises(digitalocean.DataReadError):
        droplet(sim, "dup").create()
    assert [vm["name"] for vm in sim_vms(sim, "digitalocean")] == ["dup"]

    sim.set_faults(provider="vultr", endpoint="create", drop_after_create=1)
    with vultr(sim) as c:
        assert c.post("/instances", json=VULTR_BODY).status_code == 504
        listed = c.get("/instances", params={"tag": "lobstack-agent:dup"}).json()
        assert [i["label"] for i in listed["instances"]] == ["dup"]


def test_capacity(sim: RunningSim) -> None:
    sim.set_faults(provider="hetzner", endpoint="create", capacity=True, locations=["hel1"])
    with pytest.raises(APIException) as excinfo:
        hetzner_create(sim, "full")
    assert excinfo.value.code == "resource_unavailable"
    hetzner_create(sim, "elsewhere", location="fsn1")  # only hel1 is full

    sim.set_faults(provider="digitalocean", endpoint="create", capacity=True)
    with pytest.raises(digitalocean.DataReadError, match="unavailable"):
        droplet(sim, "full").create()

    sim.set_faults(provider="vultr", endpoint="*", capacity=True)
    with vultr(sim) as c:
        response = c.post("/instances", json=VULTR_BODY)
        assert response.status_code == 400
        assert "not available" in response.json()["error"]
    assert [vm["name"] for vm in sim.state()["vms"]] == ["elsewhere"]


def test_error_rate_one(sim: RunningSim) -> None:
    for provider in ("hetzner", "digitalocean", "vultr"):
        sim.set_faults(provider=provider, endpoint="*", error_rate=1.0)
    with pytest.raises(APIException) as excinfo:
        hcloud(sim).servers.get_all()
    assert excinfo.value.code == "unavailable"
    with pytest.raises(digitalocean.DataReadError, match="unavailable"):
        digitalocean.Manager(token=sim.tokens["digitalocean"]).get_all_droplets()
    with vultr(sim) as c:
        response = c.get("/instances")
        assert response.status_code == 503
        assert response.json() == {"error": "Service Unavailable", "status": 503}
    sim.set_faults(provider="vultr", endpoint="list", error_rate=1.0, status=500)
    with vultr(sim) as c:
        assert c.get("/instances").status_code == 500


def test_error_rate_is_deterministic(sim: RunningSim) -> None:
    # 40 requests in well under a second: Vultr's 30 a second would answer some with 429 instead of the draw.
    sim.configure(rate_limits={"vultr": {"limit": 1000, "window_s": 1.0}})

    def outcomes() -> list[int]:
        sim.set_faults(provider="vultr", endpoint="list", error_rate=0.5)
        with vultr(sim) as c:
            return [c.get("/instances").status_code for _ in range(20)]

    first, second = outcomes(), outcomes()
    assert first == second
    assert set(first) == {200, 503}
    assert sim.state()["injected"] == {"vultr": {"error": 2 * first.count(503)}}


def test_slow(sim: RunningSim) -> None:
    sim.set_faults(provider="vultr", endpoint="get", slow_ms=300)
    with vultr(sim) as c:
        started = time.monotonic()
        assert c.get("/instances/nope").status_code == 404
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        c.get("/instances")
        assert time.monotonic() - started < 0.3
    assert sim.state()["injected"] == {"vultr": {"slow": 1}}


def test_control_refuses_bad_faults(sim: RunningSim) -> None:
    response = httpx.post(f"{sim.url}/_sim/faults", json={"provider": "aws", "endpoint": "create"})
    assert response.status_code == 400
    assert "provider" in response.json()["error"]
    response = httpx.post(f"{sim.url}/_sim/faults", json={"provider": "vultr", "endpoint": "create", "bogus": 1})
    assert response.status_code == 400
    assert sim.state()["faults"] == []
