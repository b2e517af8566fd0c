"""The adapters read their provider's catalog through the real SDKs (against cloudsim), cache it for its TTL, refuse a
size a location does not sell with what it does sell, and price a VM."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.cloud.activities import CloudActivities
from activities.cloud.base import CloudProvider
from activities.cloud.catalog import CatalogCache, Money, plan_name
from activities.cloud.local import LocalProvider
from activities.errors import PlanNotOffered, ProviderUnavailable
from contracts.bootstrap import BootstrapConfig
from contracts.regions import PLANS
from tests.activities.cloud.conftest import bootstrap, direct_adapter, new_agent_id, sim_calls, vm_request

# What cloudsim sells (cloudsim/catalog.py): one price per provider, and one size each does not sell somewhere.
PRICES = {
    "hetzner": ("fsn1", "cpx11", Money(Decimal("4.35"), "EUR")),
    "digitalocean": ("fra1", "s-1vcpu-2gb", Money(Decimal("12.00"), "USD")),
    "vultr": ("fra", "vc2-1c-2gb", Money(Decimal("10.00"), "USD")),
}
NOT_SOLD = {"hetzner": ("sin", "cpx31"), "digitalocean": ("blr1", "s-8vcpu-16gb"), "vultr": ("sto", "vc2-6c-16gb")}


def catalog_calls(sim: Any, provider: str) -> int:
    return int(sim.state()["calls"].get(provider, {}).get("catalog", 0))


def test_each_adapter_reads_plans_prices_and_locations_through_its_sdk(name: str, adapter: CloudProvider) -> None:
    location, plan, price = PRICES[name]
    offers = adapter.offers(location)
    assert plan in [offer.plan for offer in offers]
    assert adapter.monthly_price(location, plan) == price
    offer = adapter.offer(location, plan)
    assert (offer.provider, offer.location, offer.size) == (name, location, "small")
    assert offer.vcpus >= 1 and offer.memory_mb >= 1024 and offer.disk_gb >= 10
    # Cheapest first, and every one of our sizes is sold in the location our region table names first.
    assert [o.monthly.amount for o in offers] == sorted(o.monthly.amount for o in offers)
    assert set(PLANS[name].values()) <= {o.plan for o in offers}


def test_the_catalog_is_read_once_per_ttl(name: str, sim: Any) -> None:
    cached = direct_adapter(name, sim)
    before = catalog_calls(sim, name)
    for _ in range(3):
        cached.offers(PRICES[name][0])
    assert catalog_calls(sim, name) - before == 1

    uncached = direct_adapter(name, sim, catalog_ttl_s=0)
    before = catalog_calls(sim, name)
    for _ in range(3):
        uncached.offers(PRICES[name][0])
    assert catalog_calls(sim, name) - before == 3


def test_the_cache_expires_on_its_monotonic_clock_and_keeps_nothing_from_a_failed_load() -> None:
    now = [100.0]
    cache: CatalogCache[int] = CatalogCache(60.0, clock=lambda: now[0])
    loads = iter(range(10))
    assert cache.get(lambda: next(loads)) == 0
    now[0] += 59.9
    assert cache.get(lambda: next(loads)) == 0
    now[0] += 0.1
    assert cache.get(lambda: next(loads)) == 1

    def failing() -> int:
        raise RuntimeError("provider down")

    now[0] += 60
    with pytest.raises(RuntimeError):
        cache.get(failing)
    assert cache.get(lambda: next(loads)) == 2


def test_a_size_a_location_does_not_sell_is_refused_with_what_it_does_sell(name: str, adapter: CloudProvider) -> None:
    location, plan = NOT_SOLD[name]
    with pytest.raises(PlanNotOffered) as refused:
        adapter.offer(location, plan)
    error = refused.value
    assert not error.retryable and error.fails_over and error.created_nothing
    message = str(error)
    assert message.startswith(f"size: {name} does not offer {plan}") and f" in {location};" in message
    for offer in adapter.offers(location):
        assert offer.plan in message and str(offer.monthly) in message
    with pytest.raises(PlanNotOffered):
        adapter.monthly_price(location, plan)


class _Issuer:
    def __init__(self, *, allowed: bool) -> None:
        self.allowed = allowed

    def issue_bootstrap(self, agent_id: str) -> BootstrapConfig:
        assert self.allowed, "no bootstrap credential for a VM that will not be created"
        return bootstrap(agent_id)


def test_create_vm_refuses_an_unsold_size_before_looking_up_or_creating_anything(sim: Any) -> None:
    adapter = direct_adapter("hetzner", sim)
    acts = CloudActivities(providers={"hetzner": adapter}, bootstrap=_Issuer(allowed=False))
    request = vm_request("hetzner", new_agent_id(), region="ap-southeast")
    request.size = "large"  # cpx31: Hetzner's Singapore does not sell it
    before = sim_calls(sim, "hetzner")
    with pytest.raises(PlanNotOffered, match=r"does not offer cpx31 \(size large\) in sin; it offers there: cpx11"):
        ActivityEnvironment().run(acts.create_vm, request)
    assert sim_calls(sim, "hetzner") - before == 1  # the catalog read, nothing else


def test_a_create_reads_the_catalog_once_and_does_not_count_it_against_the_lifecycle(
    name: str, sim: Any, cleanup: list[Any]
) -> None:
    adapter = direct_adapter(name, sim)
    acts = CloudActivities(providers={name: adapter}, bootstrap=_Issuer(allowed=True))
    refs = []
    for _ in range(2):
        agent_id = new_agent_id()
        cleanup.append((adapter, agent_id))
        before = sim_calls(sim, name)
        ref = ActivityEnvironment().run(acts.create_vm, vm_request(name, agent_id))
        refs.append((ref, sim_calls(sim, name) - before))
    (first, first_calls), (second, second_calls) = refs
    assert (first.api_calls, first_calls) == (2, 3)  # look-up and create; plus the catalog, the worker's
    assert (second.api_calls, second_calls) == (2, 2)  # the catalog is cached


def test_the_local_provider_sells_our_three_sizes_for_nothing(tmp_path: Path) -> None:
    local = LocalProvider(state_dir=tmp_path)
    offers = local.offers("local")
    assert [(o.plan, o.size, o.monthly) for o in offers] == [
        (size, size, Money(Decimal(0), "USD")) for size in ("small", "medium", "large")
    ]
    assert local.monthly_price("anywhere", plan_name("local", "large")).amount == 0


def test_a_catalog_that_cannot_be_read_is_retried_and_nothing_is_cached(name: str, sim: Any) -> None:
    adapter = direct_adapter(name, sim)
    sim.set_faults(provider=name, endpoint="catalog", error_rate=1.0, status=503)
    with pytest.raises(ProviderUnavailable) as failure:
        adapter.offers(PRICES[name][0])
    assert failure.value.retryable
    sim.clear_faults()
    assert PRICES[name][1] in [offer.plan for offer in adapter.offers(PRICES[name][0])]
