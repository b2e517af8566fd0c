"""python-digitalocean, unchanged, against cloudsim's DigitalOcean API.

The SDK's class-method constructors (`Droplet.get_object`, `Manager.get_account`, `Droplet.get_action`) build new
objects without passing `end_point` on, so the endpoint goes in `DIGITALOCEAN_END_POINT`, as an adapter must do too.
"""

from __future__ import annotations

import digitalocean
import httpx
import pytest

from cloudsim.testing import RunningSim
from tests.cloudsim.conftest import VPC_UUID, wait_for


@pytest.fixture(autouse=True)
def endpoint(sim: RunningSim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", sim.digitalocean_url)


def droplet(sim: RunningSim, name: str, **kwargs: object) -> digitalocean.Droplet:
    fields = {"region": "fra1", "size_slug": "s-1vcpu-2gb", "image": "ubuntu-24-04-x64", "vpc_uuid": VPC_UUID} | kwargs
    return digitalocean.Droplet(token=sim.tokens["digitalocean"], end_point=sim.digitalocean_url, name=name, **fields)


def manager(sim: RunningSim, token: str | None = None) -> digitalocean.Manager:
    return digitalocean.Manager(token=token or sim.tokens["digitalocean"], end_point=sim.digitalocean_url)


def test_lifecycle(sim: RunningSim) -> None:
    d = droplet(sim, "agent-abc", tags=["lobstack-agent-abc", "lobstack"], user_data="#cloud-config\n")
    d.create()
    assert d.id and d.action_ids
    droplet(sim, "other", tags=["lobstack"]).create()

    loaded = digitalocean.Droplet.get_object(api_token=sim.tokens["digitalocean"], droplet_id=d.id)
    assert loaded.name == "agent-abc"
    assert loaded.tags == ["lobstack-agent-abc", "lobstack"]

    tagged = manager(sim).get_all_droplets(tag_name="lobstack-agent-abc")
    assert [x.id for x in tagged] == [d.id]
    assert len(manager(sim).get_all_droplets(tag_name="lobstack")) == 2

    def active() -> digitalocean.Droplet | None:
        d.load()
        return d if d.status == "active" else None

    wait_for(active, what="droplet active")
    assert d.ip_address is not None and d.ip_address.startswith("127.")
    assert d.get_action(d.action_ids[0]).status == "completed"
    assert manager(sim).get_account().status == "active"

    assert d.destroy() is True
    with pytest.raises(digitalocean.NotFoundError):
        d.load()


def test_new_droplet_has_no_address_yet(sim: RunningSim) -> None:
    sim.configure(boot_latency_s=30)
    d = droplet(sim, "slow")
    d.create()
    d.load()
    assert d.status == "new"
    assert d.networks["v4"] == []


def test_bad_token(sim: RunningSim) -> None:
    with pytest.raises(digitalocean.DataReadError) as excinfo:
        manager(sim, token="wrong").get_all_droplets()
    assert str(excinfo.value) == "Unable to authenticate you"
    body = httpx.get(f"{sim.digitalocean_url}droplets", headers={"Authorization": "Bearer wrong"}).json()
    assert body["id"] == "Unauthorized"


def test_validation(sim: RunningSim) -> None:
    with pytest.raises(digitalocean.DataReadError, match="invalid region"):
        droplet(sim, "bad-region", region="mars1").create()
    with pytest.raises(digitalocean.DataReadError, match="invalid size"):
        droplet(sim, "bad-size", size_slug="s-999").create()
    with pytest.raises(digitalocean.DataReadError, match="user_data"):
        droplet(sim, "big", user_data="x" * (64 * 1024 + 1)).create()
    assert sim.state()["vms"] == []


def test_pagination(sim: RunningSim) -> None:
    for i in range(5):
        droplet(sim, f"page-{i}", tags=["batch"]).create()
    headers = {"Authorization": f"Bearer {sim.tokens['digitalocean']}"}
    first = httpx.get(f"{sim.digitalocean_url}droplets", params={"tag_name": "batch", "per_page": 2}, headers=headers)
    body = first.json()
    assert body["meta"]["total"] == 5
    assert len(body["droplets"]) == 2
    assert "page=2" in body["links"]["pages"]["next"]
    assert "tag_name=batch" in body["links"]["pages"]["next"]
    # The SDK follows links.pages.next itself.
    everything = manager(sim).get_all_droplets(params={"per_page": 2}, tag_name="batch")
    assert sorted(str(x.name) for x in everything) == [f"page-{i}" for i in range(5)]
