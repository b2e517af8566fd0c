"""Fixtures for the cloud adapter tests: one real cloudsim process for the session, the real client libraries.

Nothing is mocked: hcloud, python-digitalocean and httpx speak HTTP to cloudsim, whose control endpoint injects the
faults and reports what it received.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from activities.cloud.base import CloudProvider
from activities.cloud.providers import build_providers
from contracts.bootstrap import BootstrapConfig
from contracts.models import CreateVMRequest
from contracts.regions import CLOUD_PROVIDERS, CloudProviderName, is_provider_name

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_faults(sim: Any) -> Iterator[None]:
    sim.clear_faults()
    yield
    sim.clear_faults()


def sim_env(sim: Any, **overrides: str) -> dict[str, str]:
    return {**sim.env(), **overrides}


@pytest.fixture(params=CLOUD_PROVIDERS)
def name(request: pytest.FixtureRequest) -> CloudProviderName:
    provider: CloudProviderName = request.param
    return provider


@pytest.fixture
def adapter(name: str, sim: Any) -> CloudProvider:
    return build_providers([name], sim_env(sim))[name]


def new_agent_id() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def vm_request(provider: str, agent_id: str, *, region: str = "eu-central", location: str = "") -> CreateVMRequest:
    assert is_provider_name(provider), provider
    return CreateVMRequest(
        agent_id=agent_id,
        account_id="acct-7",
        name=f"agent {agent_id}",
        provider=provider,
        region=region,
        size="small",
        location=location,
    )


def bootstrap(agent_id: str, **overrides: Any) -> BootstrapConfig:
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "vault_addr": "http://127.0.0.1:9",
        "role_id": "role-id",
        "wrapped_secret_id": "s.wrapped-single-use",
        "expected_creation_path": "auth/approle/role/agent/secret-id",
    }
    fields.update(overrides)
    return BootstrapConfig(**fields)


def sim_calls(sim: Any, provider: str) -> int:
    """Every request cloudsim received for `provider`, whatever its answer."""
    return sum(sim.state()["calls"].get(provider, {}).values())


def sim_vms(sim: Any, provider: str, agent_id: str) -> list[dict[str, Any]]:
    return [vm for vm in sim.state()["vms"] if vm["provider"] == provider and vm["name"] == f"lobstack-{agent_id}"]


def poll(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float = 20.0, what: str = "") -> T:
    """Fetch until `done(value)` or the deadline; fails with the last value seen."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}: last {value!r}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


@pytest.fixture
def cleanup(sim: Any) -> Iterator[list[tuple[CloudProvider, str]]]:
    """Agents to remove after the test, whatever it left: (adapter, agent_id)."""
    made: list[tuple[CloudProvider, str]] = []
    yield made
    sim.clear_faults()
    for provider, agent_id in made:
        for vm in provider.list_managed():
            if vm.agent_id == agent_id:
                provider.delete(vm.vm_id)


def direct_adapter(name: str, sim: Any, **options: Any) -> CloudProvider:
    """An adapter built with explicit options (page size, timeouts) instead of the env factory's defaults."""
    from activities.cloud.digitalocean import DigitalOceanProvider
    from activities.cloud.hetzner import HetznerProvider
    from activities.cloud.vultr import VultrProvider

    classes: dict[str, Any] = {
        "hetzner": (HetznerProvider, sim.hetzner_url),
        "digitalocean": (DigitalOceanProvider, sim.digitalocean_url),
        "vultr": (VultrProvider, sim.vultr_url),
    }
    cls, endpoint = classes[name]
    provider: CloudProvider = cls(token=sim.tokens[name], endpoint=endpoint, **options)
    return provider
