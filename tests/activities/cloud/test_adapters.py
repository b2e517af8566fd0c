"""The three cloud adapters against cloudsim: lifecycle, idempotency, error classification, pagination, counting."""

from __future__ import annotations

import time
import traceback
from typing import Any

import pytest

from activities.cloud.base import ACCOUNT_LABEL, AGENT_LABEL, VM, CloudProvider, vm_name
from activities.cloud.calls import counting
from activities.cloud.providers import build_providers
from activities.errors import (
    ProviderCapacityError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from tests.activities.cloud.conftest import (
    bootstrap,
    direct_adapter,
    new_agent_id,
    poll,
    sim_calls,
    sim_env,
    sim_vms,
    vm_request,
)

# An id that is well-formed for each provider but names nothing.
MISSING_ID = {"hetzner": "1", "digitalocean": "1", "vultr": "00000000-0000-4000-8000-000000000000"}


def _owned(vms: list[VM], agent_id: str) -> list[VM]:
    return [vm for vm in vms if vm.agent_id == agent_id]


def test_full_cycle(name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))

    created = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    assert (created.provider, created.name, created.agent_id) == (name, vm_name(agent_id), agent_id)
    assert created.status in ("creating", "running")

    running = poll(lambda: adapter.get(created.vm_id), lambda vm: vm is not None and vm.status == "running", what="run")
    assert running is not None
    [simulated] = sim_vms(sim, name, agent_id)
    assert running.address == f"http://{simulated['ip']}:8787"
    # No location in the request: the region's first one (regions.LOCATIONS["eu-central"]).
    assert simulated["location"] == {"hetzner": "fsn1", "digitalocean": "fra1", "vultr": "fra"}[name]

    # The agent and its account are on the VM, in each provider's own way.
    if name == "hetzner":
        assert simulated["labels"] == {AGENT_LABEL: agent_id, ACCOUNT_LABEL: "acct-7"}
    elif name == "digitalocean":
        assert {f"{AGENT_LABEL}:{agent_id}", f"{ACCOUNT_LABEL}:acct-7"} <= set(simulated["tags"])
    else:
        assert {f"{AGENT_LABEL}={agent_id}", f"{ACCOUNT_LABEL}=acct-7"} <= set(simulated["tags"])

    assert adapter.find(agent_id) == running
    assert _owned(adapter.list_managed(), agent_id) == [running]

    assert adapter.delete(created.vm_id) is True
    poll(lambda: adapter.get(created.vm_id), lambda vm: vm is None, what="gone")
    assert adapter.find(agent_id) is None
    assert adapter.delete(created.vm_id) is False


def test_create_uses_the_requested_location(name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    location = {"hetzner": "nbg1", "digitalocean": "nyc1", "vultr": "atl"}[name]
    region = "eu-central" if name == "hetzner" else "us-east"
    adapter.create(vm_request(name, agent_id, region=region, location=location), bootstrap(agent_id))
    [simulated] = sim_vms(sim, name, agent_id)
    assert simulated["location"] == location


def test_create_only_creates(name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]) -> None:
    """No look-up inside an adapter's create: one request. Finding and adopting are the create activity's."""
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    before = sim_calls(sim, name)
    with counting() as calls:
        adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    assert calls.total == sim_calls(sim, name) - before == 1


def test_dropped_create_answer_is_retryable(name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    sim.set_faults(provider=name, endpoint="create", drop_after_create=1, drop_mode="504")
    with pytest.raises(ProviderUnavailable) as failure:
        adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    assert failure.value.retryable
    # The VM exists although the answer was lost: the create activity's next look-up finds it (test_create_vm.py).
    found = adapter.find(agent_id)
    assert found is not None and found.name == vm_name(agent_id)


def test_rate_limit_storm(name: str, adapter: CloudProvider, sim: Any) -> None:
    sim.set_faults(provider=name, endpoint="get", storm_429=1, retry_after_s=1.5)
    with pytest.raises(ProviderRateLimited) as failure:
        adapter.get(MISSING_ID[name])
    retry_after = failure.value.retry_after_s
    # Hetzner and DigitalOcean send a whole-second reset time, Vultr a whole-second Retry-After: 1.5 s rounds up.
    assert 0.5 <= retry_after <= 3.0, retry_after
    assert failure.value.retryable
    assert "429" in str(failure.value)

    time.sleep(retry_after)  # waiting out the provider's stated reset is the behaviour under test
    assert adapter.get(MISSING_ID[name]) is None


# Each provider's own limiter, shrunk so a burst of a few requests exceeds it.
SMALL_LIMITS = {
    "hetzner": {"limit": 4, "window_s": 4.0},  # a bucket of 4, refilled one a second
    "digitalocean": {"minute_limit": 3, "minute_window_s": 2.0},  # the per-minute sliding window, made 2 s
    "vultr": {"limit": 3, "window_s": 1.0},
}


def test_rate_limit_from_the_providers_limiter(name: str, adapter: CloudProvider, sim: Any) -> None:
    from cloudsim.ratelimit import DEFAULT_LIMITS

    sim.configure(rate_limits={name: SMALL_LIMITS[name]})
    try:
        with pytest.raises(ProviderRateLimited) as failure:
            for _ in range(10):
                adapter.get(MISSING_ID[name])
        retry_after = failure.value.retry_after_s
        assert 0.5 <= retry_after <= 6.0, retry_after
        time.sleep(retry_after)  # the provider's stated reset
        assert adapter.get(MISSING_ID[name]) is None
    finally:
        sim.configure(rate_limits={name: DEFAULT_LIMITS[name]})


def test_capacity(name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    location = {"hetzner": "fsn1", "digitalocean": "fra1", "vultr": "fra"}[name]
    sim.set_faults(provider=name, endpoint="create", capacity=True, locations=[location])
    with pytest.raises(ProviderCapacityError) as failure:
        adapter.create(vm_request(name, agent_id, location=location), bootstrap(agent_id))
    assert not failure.value.retryable
    assert location in str(failure.value)
    assert adapter.find(agent_id) is None


def test_bad_token_is_rejected_without_the_token(name: str, sim: Any) -> None:
    token = "not-the-token-9f8e7d6c5b4a"
    env_var = {"hetzner": "HCLOUD_TOKEN", "digitalocean": "DIGITALOCEAN_ACCESS_TOKEN", "vultr": "VULTR_API_KEY"}[name]
    adapter = build_providers([name], sim_env(sim, **{env_var: token}))[name]
    agent_id = new_agent_id()
    for call in (
        adapter.list_managed,
        lambda: adapter.get(MISSING_ID[name]),
        lambda: adapter.create(vm_request(name, agent_id), bootstrap(agent_id)),
    ):
        with pytest.raises(ProviderRejected) as failure:
            call()
        assert "401" in str(failure.value)
        assert token not in "".join(traceback.format_exception(failure.value))
    assert sim_vms(sim, name, agent_id) == []


def test_oversized_user_data_is_refused_before_any_call(name: str, adapter: CloudProvider, sim: Any) -> None:
    agent_id = new_agent_id()
    before = sim_calls(sim, name)
    with pytest.raises(ProviderRejected, match="user_data"):
        adapter.create(vm_request(name, agent_id), bootstrap(agent_id, role_id="x" * 70_000))
    assert sim_calls(sim, name) == before
    assert adapter.calls.total == 0  # type: ignore[attr-defined]  # real adapters count calls


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(name: str, adapter: CloudProvider, sim: Any, status: int) -> None:
    sim.set_faults(provider=name, endpoint="list", error_rate=1.0, status=status)
    before = sim_calls(sim, name)
    with pytest.raises(ProviderUnavailable, match=str(status)) as failure:
        adapter.list_managed()
    assert failure.value.retryable
    # Exactly one request: no SDK-internal retries (hcloud would retry 502 five times with backoff).
    assert sim_calls(sim, name) == before + 1


def test_slow_answer_is_a_timeout(name: str, sim: Any) -> None:
    adapter = direct_adapter(name, sim, timeout_s=0.3)
    sim.set_faults(provider=name, endpoint="get", slow_ms=1500)
    before = sim_calls(sim, name)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        adapter.get(MISSING_ID[name])
    assert sim_calls(sim, name) == before + 1  # hcloud would have retried a read timeout five times


def test_unknown_vm_is_none_and_delete_is_false(name: str, adapter: CloudProvider) -> None:
    assert adapter.get(MISSING_ID[name]) is None
    assert adapter.delete(MISSING_ID[name]) is False


def test_list_managed_follows_pagination(name: str, sim: Any, cleanup: list[Any]) -> None:
    page_size = 2
    adapter = direct_adapter(name, sim, page_size=page_size)
    agents = [new_agent_id() for _ in range(page_size * 2 + 1)]
    for agent_id in agents:
        cleanup.append((adapter, agent_id))
        adapter.create(vm_request(name, agent_id), bootstrap(agent_id))

    before = sim.state()["calls"].get(name, {}).get("list", 0)
    managed = adapter.list_managed()
    pages = sim.state()["calls"][name]["list"] - before
    assert set(agents) <= {vm.agent_id for vm in managed}
    assert len({vm.vm_id for vm in managed}) == len(managed)
    assert pages == -(-len(managed) // page_size)  # every page, once


def test_calls_are_counted(name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    before_sim, before_total = sim_calls(sim, name), adapter.calls.total  # type: ignore[attr-defined]  # real adapters count calls
    with counting() as outer:
        with counting() as create_calls:
            vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
        poll(lambda: adapter.get(vm.vm_id), lambda v: v is not None and v.status == "running", what="run")
        adapter.delete(vm.vm_id)
        adapter.get(MISSING_ID[name])
    made = sim_calls(sim, name) - before_sim
    assert outer.total == outer.by_provider[name] == made
    assert adapter.calls.total - before_total == made  # type: ignore[attr-defined]  # real adapters count calls
    assert create_calls.total == 1  # the create alone; the activity looks up first (test_create_vm.py)


def test_failed_requests_are_counted(name: str, adapter: CloudProvider, sim: Any) -> None:
    sim.set_faults(provider=name, endpoint="get", error_rate=1.0, status=503)
    before = sim_calls(sim, name)
    with counting() as calls, pytest.raises(ProviderUnavailable):
        adapter.get(MISSING_ID[name])
    assert calls.total == sim_calls(sim, name) - before == 1


def test_build_providers_refuses_unknown_names_and_missing_tokens() -> None:
    with pytest.raises(ProviderRejected, match=r"unknown 'aws'; allowed: hetzner, digitalocean, vultr"):
        build_providers(["hetzner", "aws"], {"HCLOUD_TOKEN": "x"})
    with pytest.raises(ProviderRejected, match="VULTR_API_KEY") as failure:
        build_providers(["vultr"], {"HCLOUD_TOKEN": "secret-value"})
    assert "secret-value" not in str(failure.value)
    built = build_providers(["vultr", "hetzner", "vultr"], {"HCLOUD_TOKEN": "a", "VULTR_API_KEY": "b"})
    assert list(built) == ["vultr", "hetzner"]


def test_concurrent_activities_count_only_their_own_calls(name: str, adapter: CloudProvider, sim: Any) -> None:
    """Sync activities share one adapter across worker threads; each thread's counter sees only its requests."""
    from concurrent.futures import ThreadPoolExecutor

    def activity(requests: int) -> int:
        with counting() as calls:
            for _ in range(requests):
                adapter.get(MISSING_ID[name])
        return calls.total

    before = sim_calls(sim, name)
    with ThreadPoolExecutor(max_workers=3) as pool:
        totals = list(pool.map(activity, [1, 2, 3]))
    assert totals == [1, 2, 3]
    assert sim_calls(sim, name) - before == 6
