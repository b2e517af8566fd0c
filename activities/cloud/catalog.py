"""What a provider sells where, and at which price: our own provider-neutral view of its catalog.

Each adapter reads its provider's catalog through its SDK (`catalog()`), once per `CatalogCache` lifetime; the
`CatalogReads` mixin answers everything else from that one list: the offers of a location, one plan's offer (or
`PlanNotOffered`, listing what the location does offer), and a VM's monthly price for spend quotas.

Prices are list prices before tax in the provider's own currency (Hetzner EUR, DigitalOcean and Vultr USD): no
exchange rate is guessed here, so a sum across providers keeps its currencies apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from activities.errors import PlanNotOffered
from contracts.regions import PLANS, ProviderName

T = TypeVar("T")

# Catalogs change when a provider opens a location or retires a plan: an hour old is fresh enough, and a worker then
# reads each catalog at most 24 times a day out of budgets of thousands of requests an hour.
DEFAULT_CATALOG_TTL_S = 3600.0


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount:.2f} {self.currency}"


@dataclass(frozen=True)
class Offer:
    """One plan as sold in one location."""

    provider: ProviderName
    plan: str
    location: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    monthly: Money

    @property
    def size(self) -> str:
        """Our size name for this plan (`small`, `medium`, `large`), or "" for the provider's other plans."""
        return size_of(self.provider, self.plan)

    def describe(self) -> str:
        named = f" ({self.size})" if self.size else ""
        return f"{self.plan}{named} {self.vcpus} vCPU {self.memory_mb / 1024:g} GB {self.monthly}/month"


def plan_name(provider: str, size: str) -> str:
    """The provider's plan for one of our sizes; the local provider's plans are our size names."""
    return PLANS[provider][size] if provider in PLANS else size


def size_of(provider: str, plan: str) -> str:
    if provider not in PLANS:
        return plan
    return next((size for size, name in PLANS[provider].items() if name == plan), "")


class CatalogCache(Generic[T]):
    """One value, loaded on first use and again once `ttl_s` has passed (on the monotonic clock, so a changed wall
    clock neither expires it early nor keeps it forever).

    A dozen lines instead of a dependency: `cachetools.TTLCache` is a keyed cache without a load-once lock and is not
    in the image. Loading holds the lock, so threads that ask at once wait for one read instead of each making one;
    a failed load caches nothing and the next caller tries again.
    """

    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded_at = 0.0

    def get(self, load: Callable[[], T]) -> T:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._loaded_at >= self.ttl_s:
                self._value = load()
                self._loaded_at = now
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


class CatalogReads:
    """Mixed into every adapter: answers from `catalog()`, which the adapter implements (cached)."""

    name: ProviderName

    def catalog(self) -> list[Offer]:
        raise NotImplementedError

    def offers(self, location: str) -> list[Offer]:
        """The plans sold in `location`, cheapest first."""
        return sorted(
            (offer for offer in self.catalog() if offer.location == location),
            key=lambda offer: (offer.monthly.amount, offer.plan),
        )

    def offer(self, location: str, plan: str) -> Offer:
        """`plan` as sold in `location`; `PlanNotOffered` (listing what is sold there) when it is not."""
        offered = self.offers(location)
        found = next((offer for offer in offered if offer.plan == plan), None)
        if found is None:
            raise PlanNotOffered(not_offered_message(self.name, location, plan, offered))
        return found

    def monthly_price(self, location: str, plan: str) -> Money:
        """What one VM of `plan` in `location` costs a month, from the catalog."""
        return self.offer(location, plan).monthly


def not_offered_message(provider: str, location: str, plan: str, offered: Iterable[Offer]) -> str:
    size = size_of(provider, plan)
    named = f" (size {size})" if size and size != plan else ""
    listed = ", ".join(offer.describe() for offer in offered) or "nothing"
    return f"size: {provider} does not offer {plan}{named} in {location}; it offers there: {listed}"


__all__ = [
    "DEFAULT_CATALOG_TTL_S",
    "CatalogCache",
    "CatalogReads",
    "Money",
    "Offer",
    "not_offered_message",
    "plan_name",
    "size_of",
]
