"""hcloud, unchanged, against cloudsim's Hetzner API."""

from __future__ import annotations

from typing import Any

import pytest
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import CreateServerResponse

from cloudsim.testing import RunningSim
from tests.cloudsim.conftest import wait_for


def client(sim: RunningSim, token: str | None = None) -> Client:
    return Client(token=token or sim.tokens["hetzner"], api_endpoint=sim.hetzner_url, poll_interval=0.05)


def create(c: Client, name: str, location: str = "hel1", **kwargs: Any) -> CreateServerResponse:
    return c.servers.create(
        name=name,
        server_type=ServerType(name="cpx11"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name=location),
        **kwargs,
    )


def test_lifecycle(sim: RunningSim) -> None:
    c = client(sim)
    created = create(c, "agent-abc", labels={"lobstack-agent": "abc"}, user_data="#cloud-config\n")
    server = created.server
    assert server.id is not None
    assert server.status == "initializing"
    assert server.labels == {"lobstack-agent": "abc"}
    assert server.public_net is not None and server.public_net.ipv4 is not None
    assert server.public_net.ipv4.ip.startswith("127.")
    assert server.location is not None and server.location.name == "hel1"
    assert created.action.command == "create_server"
    assert created.action.status == "running"
    assert [a.command for a in created.next_actions] == ["start_server"]
    assert created.root_password

    assert c.servers.get_by_id(server.id).name == "agent-abc"
    create(c, "other", labels={"lobstack-agent": "zzz"})
    found = c.servers.get_all(label_selector="lobstack-agent=abc")
    assert [s.id for s in found] == [server.id]
    by_name = c.servers.get_by_name("agent-abc")
    assert by_name is not None and by_name.id == server.id
    assert len(c.servers.get_all(label_selector="lobstack-agent")) == 2
    assert len(c.servers.get_all(label_selector="lobstack-agent in (abc,zzz),!absent")) == 2

    create_action = created.action  # reloaded in place by wait_until_finished
    create_action.wait_until_finished(max_retries=200)
    assert create_action.status == "success"
    server_id = server.id
    running = wait_for(lambda: c.servers.get_by_id(server_id).status == "running", what="running")
    assert running

    action = c.servers.delete(server)
    assert action.command == "delete_server"
    assert action.status in ("running", "success")
    action.wait_until_finished(max_retries=200)
    assert action.status == "success"
    with pytest.raises(APIException) as excinfo:
        c.servers.get_by_id(server.id)
    assert excinfo.value.code == "not_found"


def test_status_passes_through_starting(sim: RunningSim) -> None:
    sim.configure(boot_latency_s=1.0)
    c = client(sim)
    server = create(c, "slow-boot").server
    assert server.id is not None
    server_id = server.id
    seen: set[str | None] = set()

    def progressed() -> bool:
        seen.add(c.servers.get_by_id(server_id).status)
        return "running" in seen

    wait_for(progressed, what="running")
    assert {"initializing", "starting", "running"} <= seen


def test_bad_token(sim: RunningSim) -> None:
    with pytest.raises(APIException) as excinfo:
        client(sim, token="wrong").servers.get_all()
    assert excinfo.value.code == "unauthorized"


def test_validation(sim: RunningSim) -> None:
    c = client(sim)
    with pytest.raises(APIException) as excinfo:
        create(c, "bad-location", location="xyz1")
    assert excinfo.value.code == "invalid_input"
    assert excinfo.value.details["fields"][0]["name"] == "location"

    create(c, "taken")
    with pytest.raises(APIException) as excinfo:
        create(c, "taken")
    assert excinfo.value.code == "uniqueness_error"

    with pytest.raises(APIException) as excinfo:
        create(c, "too-much-user-data", user_data="x" * (32 * 1024 + 1))
    assert excinfo.value.code == "invalid_input"
    assert excinfo.value.details["fields"][0]["name"] == "user_data"
    assert len(sim.state()["vms"]) == 1


def test_pagination(sim: RunningSim) -> None:
    c = client(sim)
    for i in range(5):
        create(c, f"page-{i}", labels={"batch": "p"})
    page = c.servers.get_list(label_selector="batch=p", page=1, per_page=2)
    assert len(page.servers) == 2
    pagination = page.meta.pagination
    assert pagination is not None
    assert pagination.next_page == 2
    assert pagination.last_page == 3
    assert pagination.total_entries == 5
    assert sorted(str(s.name) for s in c.servers.get_all(label_selector="batch=p")) == [f"page-{i}" for i in range(5)]
