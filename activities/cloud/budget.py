"""API budgets: what each provider allows, and a client-side token bucket that keeps one worker within it.

Two layers keep a fleet inside a provider's limit. The server-side one is the provider's task queue, whose
`max_task_queue_activities_per_second` Temporal enforces across every worker; the in-process one is `Budgeted`, which
makes each HTTP request an adapter sends (status polls included) wait for a token, so a burst of polling cannot spend
the budget the creates and deletes need. A 429 that still gets through stops every caller of that provider until the
provider's own reset time; the refused call is then made again, within a bounded wait, and past that Temporal retries
the activity after the same reset.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from activities.cloud.base import VM, CloudProvider
from activities.cloud.calls import counting
from activities.cloud.catalog import CatalogReads, Offer
from activities.cloud.firewalls import FirewallProvider, ProviderFirewall
from activities.errors import ProviderRateLimited, ProviderRejected
from contracts.bootstrap import BootstrapConfig
from contracts.firewall import FirewallRules
from contracts.models import CreateVMRequest
from contracts.pool import PoolKey

# Documented limits, in requests per second: Hetzner 3600/h per project; DigitalOcean 5000/h and 250/min (the hourly
# one binds); Vultr 30/s.
DOCUMENTED_CALLS_PER_S: dict[str, float] = {"hetzner": 3600 / 3600, "digitalocean": 5000 / 3600, "vultr": 30.0}
# A create or delete activity makes about this many calls (look-up by label, then the call itself).
CALLS_PER_ACTIVITY = 2.0
# How long one call may wait out 429s in-process before the ProviderRateLimited goes to Temporal: well inside the
# shortest heartbeat timeout of a cloud activity (wait_vm_running, 30 s), which heartbeats only between polls.
MAX_RATE_LIMIT_WAIT_S = 10.0

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class ApiBudget:
    provider: str
    calls_per_s: float
    burst: int = 10

    @property
    def activities_per_s(self) -> float:
        return self.calls_per_s / CALLS_PER_ACTIVITY

    @classmethod
    def for_provider(cls, provider: str, env: Mapping[str, str] | None = None) -> ApiBudget:
        """The documented budget, or `LOBSTACK_API_BUDGET_<PROVIDER>` (calls per second) where set."""
        env = os.environ if env is None else env
        override = env.get(f"LOBSTACK_API_BUDGET_{provider.upper()}", "")
        if override:
            try:
                rate = float(override)
            except ValueError:
                raise ValueError(f"LOBSTACK_API_BUDGET_{provider.upper()}: {override!r} is not a number") from None
            if rate <= 0:
                raise ValueError(f"LOBSTACK_API_BUDGET_{provider.upper()}: must be > 0 calls per second")
            return cls(provider, rate)
        return cls(provider, DOCUMENTED_CALLS_PER_S[provider])


class TokenBucket:
    """Thread-safe: `take()` blocks until a token is available. Refills at `rate` per second up to `burst`.

    `charge(n)` spends tokens without waiting (the balance may go negative: later callers wait it off), and `pause(s)`
    empties the bucket and refills nothing for `s` seconds.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()  # refilled up to here; in the future while paused
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._refill(now)
                if now >= self._stamp and self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                pause = max(self._stamp - now, 0.0) + max(1 - self._tokens, 0.0) / self.rate
            time.sleep(pause)
            waited += pause

    def charge(self, tokens: float) -> None:
        with self._lock:
            self._refill(time.monotonic())
            self._tokens = min(self.burst, self._tokens - tokens)

    def pause(self, seconds: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._refill(now)
            self._tokens = min(self._tokens, 0.0)
            self._stamp = max(self._stamp, now + seconds)


class Budgeted(CatalogReads):
    """A CloudProvider that spends one token of its budget per HTTP request before passing each call on.

    A call pays one token up front and, once it returns, one more for every further request it made (further pages
    of a list), as counted by the adapter itself. A call refused with a 429 pauses the bucket until the provider's
    reset, so the other callers wait too instead of collecting 429s of their own, and is then made again: a 429 is a
    refusal, nothing happened at the provider, so this is safe for creates and deletes. After `max_rate_limit_wait_s`
    of such waits the ProviderRateLimited is raised for Temporal to retry.

    This is the one exception to "Temporal owns retries" (every other failure goes to Temporal at once, so each
    attempt is in history). A 429 is not a failure of the step but the budget, shared by every activity of the
    worker, saying "not yet": the pause must hold all of them back together, which only this in-process bucket can
    do. Sent to Temporal instead, each refused activity would be rescheduled on its own timer, a storm's 429s would
    each become a failed attempt in history, and the retries would arrive as a burst when the reset comes. The wait
    is bounded well inside the cloud activities' heartbeat timeout, and past it Temporal retries as usual.
    """

    def __init__(
        self, provider: CloudProvider, budget: ApiBudget, *, max_rate_limit_wait_s: float = MAX_RATE_LIMIT_WAIT_S
    ) -> None:
        self.inner = provider
        self.name = provider.name
        self.budget = budget
        self.max_rate_limit_wait_s = max_rate_limit_wait_s
        self._bucket = TokenBucket(budget.calls_per_s, budget.burst)

    def _spend(self, call: Callable[[], T]) -> T:
        waited = 0.0
        while True:
            self._bucket.take()
            with counting() as calls:
                try:
                    return call()
                except ProviderRateLimited as exc:
                    pause = max(exc.retry_after_s, 1.0 / self.budget.calls_per_s)
                    self._bucket.pause(pause)
                    if waited + pause > self.max_rate_limit_wait_s:
                        raise
                    log.info("%s answered 429: every caller waits %.1fs, then the call is made again", self.name, pause)
                    waited += pause
                finally:
                    self._bucket.charge(calls.total - 1)

    def find(self, agent_id: str) -> VM | None:
        return self._spend(lambda: self.inner.find(agent_id))

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        return self._spend(lambda: self.inner.create(request, bootstrap))

    def get(self, vm_id: str) -> VM | None:
        return self._spend(lambda: self.inner.get(vm_id))

    def delete(self, vm_id: str) -> bool:
        return self._spend(lambda: self.inner.delete(vm_id))

    def list_managed(self) -> list[VM]:
        return self._spend(lambda: self.inner.list_managed())

    def create_pool_vm(self, key: PoolKey, slot: str, location: str, bootstrap: BootstrapConfig) -> VM:
        return self._spend(lambda: self.inner.create_pool_vm(key, slot, location, bootstrap))

    def find_pool_vm(self, slot: str) -> VM | None:
        return self._spend(lambda: self.inner.find_pool_vm(slot))

    def list_pool_vms(self) -> list[VM]:
        return self._spend(lambda: self.inner.list_pool_vms())

    def adopt(self, vm_id: str, agent_id: str, account_id: str, firewall_id: str) -> VM:
        # Two requests on Hetzner (rename, then firewall); re-made whole after a 429, which the adapter makes safe.
        return self._spend(lambda: self.inner.adopt(vm_id, agent_id, account_id, firewall_id))

    def catalog(self) -> list[Offer]:
        # Paid for after the fact: the adapter answers from its cache nearly always (one read an hour), and taking a
        # token up front would hold every create back by one token interval for a call that is not made.
        with counting() as calls:
            try:
                return self.inner.catalog()
            finally:
                self._bucket.charge(calls.total)

    # --- firewalls (activities/cloud/firewalls.py), passed on when the adapter has them

    def _firewalls(self) -> FirewallProvider:
        if not isinstance(self.inner, FirewallProvider):
            raise ProviderRejected(f"provider {self.name!r} has no firewalls")
        return self.inner

    def ensure_firewall(self, agent_id: str, account_id: str, rules: FirewallRules) -> ProviderFirewall:
        return self._spend(lambda: self._firewalls().ensure_firewall(agent_id, account_id, rules))

    def find_firewalls(self, agent_id: str) -> list[ProviderFirewall]:
        return self._spend(lambda: self._firewalls().find_firewalls(agent_id))

    def delete_firewall(self, firewall_id: str) -> bool:
        return self._spend(lambda: self._firewalls().delete_firewall(firewall_id))

    def list_managed_firewalls(self) -> list[ProviderFirewall]:
        return self._spend(lambda: self._firewalls().list_managed_firewalls())
