"""The catalog endpoints, held to the providers' published documents: every page of every list validates against the
path's 200 response schema, pagination walks as each provider documents it, and the data says where what is sold."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudsim.testing import RunningSim
from tests.cloud_contract.openapi import Exchange
from tests.cloud_contract.test_contract import assert_documented as documented


def assert_documented(response: httpx.Response) -> None:
    """One answer, checked by the contract tests' checker against its operation in the provider's document."""
    url = response.request.url
    headers = {key.lower(): value for key, value in response.headers.items()}
    exchange = Exchange("GET", url.path, url.query.decode(), "", response.status_code, headers, response.text, True)
    documented([exchange])


def client(sim: RunningSim, provider: str) -> httpx.Client:
    base = {"hetzner": sim.hetzner_url, "digitalocean": sim.digitalocean_url, "vultr": sim.vultr_url}[provider]
    return httpx.Client(base_url=base.rstrip("/"), headers={"Authorization": f"Bearer {sim.tokens[provider]}"})


def walk_hetzner(c: httpx.Client, key: str, per_page: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page: int | None = 1
    while page:
        response = c.get(f"/{key}", params={"page": page, "per_page": per_page})
        assert response.status_code == 200, response.text
        body = response.json()
        assert_documented(response)
        pagination = body["meta"]["pagination"]
        if pagination["next_page"]:
            assert 'rel="next"' in response.headers["Link"]
        found += body[key]
        page = pagination["next_page"]
    return found


@pytest.mark.parametrize("key", ["locations", "server_types", "images", "datacenters"])
def test_hetzner_catalog_lists_match_the_document_page_by_page(sim: RunningSim, key: str) -> None:
    with client(sim, "hetzner") as c:
        everything = walk_hetzner(c, key, per_page=2)
        assert everything == walk_hetzner(c, key, per_page=50)
    assert len({item["id"] for item in everything}) == len(everything) > 1


def test_hetzner_server_types_carry_prices_and_locations_where_they_are_sold(sim: RunningSim) -> None:
    with client(sim, "hetzner") as c:
        types = {t["name"]: t for t in walk_hetzner(c, "server_types", per_page=50)}
        answer = c.get("/pricing")
    assert_documented(answer)
    pricing = answer.json()
    assert pricing["pricing"]["currency"] == "EUR"
    cpx11 = {p["location"]: p for p in types["cpx11"]["prices"]}
    assert cpx11["fsn1"]["price_monthly"] == {"net": "4.3500000000", "gross": "5.1765000000000000"}
    assert float(cpx11["ash"]["price_monthly"]["net"]) > float(cpx11["fsn1"]["price_monthly"]["net"])
    # Sold where it is priced, and nowhere else: cx is EU only, Singapore sells no cpx31.
    for server_type in types.values():
        assert {p["location"] for p in server_type["prices"]} == {loc["name"] for loc in server_type["locations"]}
    assert "ash" not in {loc["name"] for loc in types["cx22"]["locations"]}
    assert "sin" not in {loc["name"] for loc in types["cpx31"]["locations"]}
    assert {t["name"]: t["prices"] for t in pricing["pricing"]["server_types"]} == {
        name: t["prices"] for name, t in types.items()
    }


def test_hetzner_refuses_a_page_size_over_the_documented_maximum(sim: RunningSim) -> None:
    with client(sim, "hetzner") as c:
        response = c.get("/server_types", params={"per_page": 100})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
    assert response.json()["error"]["details"]["fields"][0]["name"] == "per_page"


@pytest.mark.parametrize("key", ["regions", "sizes", "images"])
def test_digitalocean_catalog_lists_match_the_document_page_by_page(sim: RunningSim, key: str) -> None:
    with client(sim, "digitalocean") as c:
        found: list[dict[str, Any]] = []
        url: str | None = f"/{key}?per_page=2"
        while url:
            response = c.get(url)
            assert_documented(response)
            body = response.json()
            found += body[key]
            url = body["links"]["pages"].get("next")
        total = body["meta"]["total"]
    assert len(found) == total > 1


def test_digitalocean_sizes_and_regions_agree_on_what_is_sold_where(sim: RunningSim) -> None:
    with client(sim, "digitalocean") as c:
        sizes = {s["slug"]: s for s in c.get("/sizes", params={"per_page": 200}).json()["sizes"]}
        regions = {r["slug"]: r for r in c.get("/regions", params={"per_page": 200}).json()["regions"]}
    assert sizes["s-1vcpu-2gb"]["price_monthly"] == 12.0
    assert sizes["s-1vcpu-2gb"]["price_hourly"] == 0.01786
    assert "blr1" not in sizes["s-8vcpu-16gb"]["regions"]
    for slug, size in sizes.items():
        assert {r for r, region in regions.items() if slug in region["sizes"]} == set(size["regions"])


def test_digitalocean_refuses_a_droplet_of_a_size_the_region_does_not_sell(sim: RunningSim) -> None:
    body = {"name": "a-1", "region": "blr1", "size": "s-8vcpu-16gb", "image": "ubuntu-24-04-x64"}
    with client(sim, "digitalocean") as c:
        response = c.post("/droplets", json=body)
    assert response.status_code == 422
    assert "not available in blr1" in response.json()["message"]


@pytest.mark.parametrize("key", ["regions", "plans", "os"])
def test_vultr_catalog_lists_match_the_document_cursor_by_cursor(sim: RunningSim, key: str) -> None:
    with client(sim, "vultr") as c:
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"per_page": 2}
        while True:
            response = c.get(f"/{key}", params=params)
            assert_documented(response)
            body = response.json()
            found += body[key]
            if not body["meta"]["links"]["next"]:
                break
            params["cursor"] = body["meta"]["links"]["next"]
    assert len(found) == body["meta"]["total"] > 1
    assert len({item["id"] for item in found}) == len(found)


def test_vultr_plans_carry_a_monthly_cost_and_where_they_are_sold(sim: RunningSim) -> None:
    with client(sim, "vultr") as c:
        plans = {p["id"]: p for p in c.get("/plans").json()["plans"]}
        refused = c.post(
            "/instances", json={"region": "sto", "plan": "vc2-6c-16gb", "os_id": 2284, "label": "a", "hostname": "a"}
        )
    assert plans["vc2-1c-2gb"]["monthly_cost"] == 10
    assert "sto" not in plans["vc2-6c-16gb"]["locations"]
    assert "fra" in plans["vc2-6c-16gb"]["locations"]
    assert refused.status_code == 400
    assert "not available in sto" in refused.json()["error"]


def test_catalog_calls_are_counted_under_their_own_key(sim: RunningSim) -> None:
    with client(sim, "vultr") as c:
        c.get("/plans")
        c.get("/regions")
    calls = sim.state()["calls"]
    assert calls["vultr"]["catalog"] == 2
