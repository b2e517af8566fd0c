"""Budgeted: a token per HTTP request actually sent; a 429 waited out by every caller, then the call made again."""

from __future__ import annotations

import threading
import time

import pytest

from activities.cloud.base import VM
from activities.cloud.budget import ApiBudget, Budgeted, TokenBucket
from activities.cloud.calls import ProviderCalls, counting
from activities.cloud.catalog import CatalogReads, Offer
from activities.errors import ProviderRateLimited
from contracts.regions import ProviderName
from tests.activities.cloud.conftest import bootstrap, vm_request


class FakeCloud(CatalogReads):
    """Records requests the way the real adapters do; `get` answers 429 `storm` times first."""

    # Any provider name: the fake stands for whichever cloud the budget wraps.
    name: ProviderName = "vultr"

    def __init__(self, *, storm: int = 0, retry_after_s: float = 0.2) -> None:
        self.calls = ProviderCalls(self.name)
        self.storm = storm
        self.retry_after_s = retry_after_s
        self.gets: list[float] = []

    def _vm(self, vm_id: str = "1") -> VM:
        return VM(self.name, vm_id, "n", "a", "running", "http://127.0.0.1:8787")

    def find(self, agent_id: str) -> VM | None:
        self.calls.record()
        return None

    def create(self, request: object, bootstrap: object) -> VM:
        self.find("a")  # the real adapters look the agent's VM up first: two requests for one call
        self.calls.record()
        return self._vm()

    def get(self, vm_id: str) -> VM | None:
        self.calls.record()
        self.gets.append(time.monotonic())
        if self.storm:
            self.storm -= 1
            raise ProviderRateLimited("fake get: HTTP 429", retry_after_s=self.retry_after_s)
        return self._vm(vm_id)

    def delete(self, vm_id: str) -> bool:
        self.calls.record()
        return True

    def list_managed(self) -> list[VM]:
        for _ in range(3):  # three pages
            self.calls.record()
        return []

    def catalog(self) -> list[Offer]:
        self.calls.record()
        return []

    # Warm pool calls: one request each, like find and the rename.
    def create_pool_vm(self, key: object, slot: str, location: str, bootstrap: object) -> VM:
        self.calls.record()
        return self._vm()

    def find_pool_vm(self, slot: str) -> VM | None:
        self.calls.record()
        return None

    def list_pool_vms(self) -> list[VM]:
        self.calls.record()
        return []

    def adopt(self, vm_id: str, agent_id: str, account_id: str, firewall_id: str) -> VM:
        self.calls.record()
        return self._vm(vm_id)


def budgeted(inner: FakeCloud, *, rate: float = 1000.0, burst: int = 10, max_wait_s: float = 5.0) -> Budgeted:
    return Budgeted(inner, ApiBudget("fake", rate, burst), max_rate_limit_wait_s=max_wait_s)


def tokens(b: Budgeted) -> float:
    return b._bucket._tokens


def test_every_request_spends_a_token_not_every_call() -> None:
    b = budgeted(FakeCloud(), rate=0.001)  # no refill to speak of during the test
    b.create(vm_request("hetzner", "a"), bootstrap("a"))
    assert tokens(b) == pytest.approx(8, abs=0.01)  # the create's look-up is paid for too
    b.list_managed()
    assert tokens(b) == pytest.approx(5, abs=0.01)


def test_the_overspent_budget_makes_the_next_caller_wait() -> None:
    b = budgeted(FakeCloud(), rate=20.0, burst=1)
    b.list_managed()  # paid 1 up front, charged 2 more after: 2 in debt
    t0 = time.monotonic()
    b.find("a")
    assert time.monotonic() - t0 >= 2.5 / 20 - 0.01  # the debt and one token, at 20/s


def test_a_429_is_waited_out_and_the_call_made_again() -> None:
    inner = FakeCloud(storm=2, retry_after_s=0.2)
    b = budgeted(inner)
    with counting() as calls:
        vm = b.get("7")
    assert vm is not None and vm.vm_id == "7"
    assert calls.total == 3, "the refused requests are still reported as calls"
    gaps = [b - a for a, b in zip(inner.gets, inner.gets[1:], strict=False)]
    assert len(gaps) == 2 and all(gap >= 0.19 for gap in gaps), gaps


def test_a_429_pauses_every_caller_of_the_provider() -> None:
    b = budgeted(FakeCloud(storm=1, retry_after_s=0.3))
    paused = threading.Event()
    pause = b._bucket.pause

    def pause_then_signal(seconds: float) -> None:
        pause(seconds)
        paused.set()

    b._bucket.pause = pause_then_signal  # type: ignore[method-assign]  # the test watches the bucket pause
    worker = threading.Thread(target=b.get, args=("1",))
    worker.start()
    assert paused.wait(5)
    t0 = time.monotonic()
    b.find("a")  # another activity, same provider: waits out the reset instead of collecting its own 429
    assert time.monotonic() - t0 >= 0.2
    worker.join(5)


def test_past_the_wait_bound_temporal_gets_the_rate_limit() -> None:
    inner = FakeCloud(storm=100, retry_after_s=0.2)
    b = budgeted(inner, max_wait_s=0.5)
    with pytest.raises(ProviderRateLimited):
        b.get("1")
    assert len(inner.gets) == 3  # two waits of 0.2 s fit in 0.5 s; the third 429 is raised


def test_bucket_pause_holds_back_tokens_until_it_ends() -> None:
    bucket = TokenBucket(rate=1000.0, burst=5)
    bucket.pause(0.2)
    t0 = time.monotonic()
    bucket.take()
    assert time.monotonic() - t0 >= 0.19


def test_a_catalog_read_is_paid_for_after_the_fact_and_a_cached_one_costs_nothing() -> None:
    inner = FakeCloud()
    b = budgeted(inner, rate=0.001)
    b.catalog()
    assert tokens(b) == pytest.approx(9, abs=0.01)  # the fake reads on every call: one request, one token
    cached = budgeted(CachedCatalog(), rate=0.001)
    cached.catalog()
    assert tokens(cached) == pytest.approx(10, abs=0.01)


class CachedCatalog(FakeCloud):
    def catalog(self) -> list[Offer]:
        return []
