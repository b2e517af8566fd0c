"""Rate limits with each provider's real headers and 429 bodies (raw httpx: hcloud would retry a 429 itself)."""

from __future__ import annotations

import time

import httpx
import pytest
from hcloud import Client

from cloudsim.testing import RunningSim
from tests.cloudsim.conftest import wait_for


def get(sim: RunningSim, provider: str, path: str) -> httpx.Response:
    base = {"hetzner": sim.hetzner_url, "digitalocean": sim.digitalocean_url.rstrip("/"), "vultr": sim.vultr_url}
    return httpx.get(f"{base[provider]}{path}", headers={"Authorization": f"Bearer {sim.tokens[provider]}"})


def test_hetzner_headers_and_429(sim: RunningSim) -> None:
    sim.configure(rate_limits={"hetzner": {"limit": 3, "window_s": 3600}})
    remaining = []
    for _ in range(3):
        response = get(sim, "hetzner", "/servers")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    limited = get(sim, "hetzner", "/servers")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert int(limited.headers["RateLimit-Reset"]) > time.time()
    assert sim.state()["rate_limited"]["hetzner"] == 1


def test_hetzner_default_limit(sim: RunningSim) -> None:
    first = int(get(sim, "hetzner", "/servers").headers["RateLimit-Remaining"])
    second = int(get(sim, "hetzner", "/servers").headers["RateLimit-Remaining"])
    assert first <= 3599
    assert second < first or second == 3599  # the bucket refills one request per second


def test_digitalocean_minute_limit(sim: RunningSim) -> None:
    sim.configure(rate_limits={"digitalocean": {"minute_limit": 2}})
    ok = [get(sim, "digitalocean", "/droplets") for _ in range(2)]
    assert [int(r.headers["ratelimit-remaining"]) for r in ok] == [4999, 4998]
    assert all(r.headers["ratelimit-limit"] == "5000" for r in ok)
    limited = get(sim, "digitalocean", "/droplets")
    assert limited.status_code == 429
    assert limited.json()["id"] == "too_many_requests"
    assert limited.json()["message"] == "API Rate limit exceeded."
    assert int(limited.headers["ratelimit-reset"]) > time.time()


def test_vultr_per_second_limit_recovers(sim: RunningSim) -> None:
    sim.configure(rate_limits={"vultr": {"limit": 3, "window_s": 1.0}})
    statuses = [get(sim, "vultr", "/instances").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = get(sim, "vultr", "/instances")
    assert limited.json()["status"] == 429
    assert "Retry-After" not in limited.headers  # Vultr says nothing about when: clients guess
    wait_for(lambda: get(sim, "vultr", "/instances").status_code == 200, timeout_s=5, what="the window to slide")


@pytest.mark.parametrize("provider", ["hetzner", "digitalocean", "vultr"])
def test_storm_then_success_after_reset(sim: RunningSim, provider: str) -> None:
    path = {"hetzner": "/servers", "digitalocean": "/droplets", "vultr": "/instances"}[provider]
    sim.set_faults(provider=provider, endpoint="list", storm_429=2, retry_after_s=1)
    for _ in range(2):
        limited = get(sim, provider, path)
        assert limited.status_code == 429
        if provider == "hetzner":
            assert limited.json()["error"]["code"] == "rate_limit_exceeded"
            assert limited.headers["RateLimit-Remaining"] == "0"
            retry_at = float(limited.headers["RateLimit-Reset"])
        elif provider == "digitalocean":
            assert limited.json()["id"] == "too_many_requests"
            retry_at = float(limited.headers["ratelimit-reset"])
        else:
            assert limited.json()["status"] == 429
            assert "Retry-After" not in limited.headers  # no header says when: wait what the storm was set to
            retry_at = time.time() + 1
        assert retry_at > time.time()
    # Honour what the headers said, as a client must, then the storm is over.
    time.sleep(max(0.0, retry_at - time.time()))
    assert get(sim, provider, path).status_code == 200
    assert sim.state()["rate_limited"][provider] == 2
    assert sim.state()["injected"] == {provider: {"storm_429": 2}}


def test_hcloud_retries_a_short_storm_itself(sim: RunningSim) -> None:
    sim.set_faults(provider="hetzner", endpoint="list", storm_429=1, retry_after_s=1)
    client = Client(token=sim.tokens["hetzner"], api_endpoint=sim.hetzner_url)
    assert client.servers.get_all() == []
    assert sim.state()["calls"]["hetzner"]["list"] == 2
