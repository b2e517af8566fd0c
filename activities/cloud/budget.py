"""API budgets: what each provider allows, and a client-side token bucket that keeps one worker within it.

Two layers keep a fleet inside a provider's limit. The server-side one is the provider's task queue, whose
`max_task_queue_activities_per_second` Temporal enforces across every worker; the in-process one is `Budgeted`, which
makes each adapter call (status polls included) wait for a token, so a burst of polling cannot spend the budget the
creates and deletes need. A 429 that still gets through is retried after the provider's own reset time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from activities.cloud.base import VM, CloudProvider
from bridge.config import BootstrapConfig
from workflows.models import CreateVMRequest

# Documented limits, in requests per second: Hetzner 3600/h per project; DigitalOcean 5000/h and 250/min (the hourly
# one binds); Vultr 30/s.
DOCUMENTED_CALLS_PER_S: dict[str, float] = {"hetzner": 3600 / 3600, "digitalocean": 5000 / 3600, "vultr": 30.0}
# A create or delete activity makes about this many calls (look-up by label, then the call itself).
CALLS_PER_ACTIVITY = 2.0


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
    """Thread-safe: `take()` blocks until a token is available. Refills at `rate` per second up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                pause = (1 - self._tokens) / self.rate
            time.sleep(pause)
            waited += pause


class Budgeted:
    """A CloudProvider that spends one token of its budget per call before passing it on."""

    def __init__(self, provider: CloudProvider, budget: ApiBudget) -> None:
        self.inner = provider
        self.name = provider.name
        self.budget = budget
        self._bucket = TokenBucket(budget.calls_per_s, budget.burst)

    def find(self, agent_id: str) -> VM | None:
        self._bucket.take()
        return self.inner.find(agent_id)

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        self._bucket.take()
        return self.inner.create(request, bootstrap)

    def get(self, vm_id: str) -> VM | None:
        self._bucket.take()
        return self.inner.get(vm_id)

    def delete(self, vm_id: str) -> bool:
        self._bucket.take()
        return self.inner.delete(vm_id)

    def list_managed(self) -> list[VM]:
        self._bucket.take()
        return self.inner.list_managed()
