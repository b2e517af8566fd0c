"""Vultr API v2 through httpx against cloudsim."""

from __future__ import annotations

import base64

import httpx

from cloudsim.testing import RunningSim
from tests.cloudsim.conftest import wait_for


def api(sim: RunningSim, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=sim.vultr_url, headers={"Authorization": f"Bearer {token or sim.tokens['vultr']}"})


def create(c: httpx.Client, label: str, tags: list[str], **extra: object) -> dict[str, object]:
    body = {"region": "fra", "plan": "vc2-1c-2gb", "os_id": 2284, "label": label, "hostname": label, "tags": tags}
    response = c.post("/instances", json=body | extra)
    assert response.status_code == 202, response.text
    instance: dict[str, object] = response.json()["instance"]
    return instance


def list_all(c: httpx.Client, per_page: int, **filters: str) -> tuple[list[dict[str, object]], int, int]:
    """Walk the cursors; returns (instances, meta.total, pages)."""
    found: list[dict[str, object]] = []
    cursor, pages, total = "", 0, -1
    while True:
        params: dict[str, str | int] = {"per_page": per_page, **filters}
        if cursor:
            params["cursor"] = cursor
        body = c.get("/instances", params=params).json()
        found += body["instances"]
        total = body["meta"]["total"]
        pages += 1
        cursor = body["meta"]["links"]["next"]
        if not cursor:
            return found, total, pages


def test_lifecycle(sim: RunningSim) -> None:
    with api(sim) as c:
        user_data = base64.b64encode(b"#cloud-config\n").decode()
        instance = create(c, "agent-abc", ["lobstack-agent:abc", "lobstack"], user_data=user_data)
        assert instance["status"] == "pending"
        assert instance["server_status"] == "none"
        assert instance["main_ip"] == "0.0.0.0"
        assert instance["default_password"]
        for i in range(4):
            create(c, f"other-{i}", ["lobstack"])

        by_label, total, _ = list_all(c, 2, label="agent-abc")
        assert [x["id"] for x in by_label] == [instance["id"]]
        assert total == 1
        by_tag, total, pages = list_all(c, 2, tag="lobstack")
        assert total == 5
        assert pages == 3
        assert len({x["id"] for x in by_tag}) == 5

        def ready() -> dict[str, object] | None:
            got = c.get(f"/instances/{instance['id']}").json()["instance"]
            return got if got["status"] == "active" and got["server_status"] == "ok" else None

        got = wait_for(ready, what="instance active/ok")
        assert got["power_status"] == "running"
        assert str(got["main_ip"]).startswith("127.")
        assert c.get("/account").json()["account"]["email"]

        assert c.delete(f"/instances/{instance['id']}").status_code == 204
        missing = c.get(f"/instances/{instance['id']}")
        assert missing.status_code == 404
        assert missing.json() == {"error": "Invalid instance-id.", "status": 404}


def test_bad_token_and_validation(sim: RunningSim) -> None:
    with api(sim, token="wrong") as c:
        response = c.get("/instances")
        assert response.status_code == 401
        assert response.json()["status"] == 401
    with api(sim) as c:
        bad_region = c.post("/instances", json={"region": "mars", "plan": "vc2-1c-2gb", "os_id": 2284})
        assert bad_region.status_code == 400
        assert "region" in bad_region.json()["error"]
        not_b64 = c.post(
            "/instances", json={"region": "fra", "plan": "vc2-1c-2gb", "os_id": 2284, "user_data": "#cloud-config"}
        )
        assert not_b64.status_code == 400
    assert sim.state()["vms"] == []
