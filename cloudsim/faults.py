"""Injected faults, per provider and endpoint key, deterministic for a given --seed.

A fault is set with POST /_sim/faults `{"provider", "endpoint", <fields>}` and replaces any fault with the same
provider and endpoint. A request to endpoint E of provider P is subject to the fault for (P, E) and to the one for
(P, "*"); counters (`storm_429`, `drop_after_create`) are consumed from the specific fault first.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from cloudsim import ENDPOINT_KEYS, PROVIDERS

_FIELDS = (
    "error_rate",
    "status",
    "storm_429",
    "retry_after_s",
    "slow_ms",
    "capacity",
    "locations",
    "drop_after_create",
    "drop_mode",
    "after_create",
)


@dataclass
class Fault:
    provider: str
    endpoint: str
    # Fraction of requests answered with `status` (a 5xx by default) in the provider's error format.
    error_rate: float = 0.0
    status: int = 503
    # The next N requests get 429 with headers saying to retry after `retry_after_s`.
    storm_429: int = 0
    retry_after_s: float = 1.0
    # Delay before answering, in milliseconds.
    slow_ms: int = 0
    # Creates fail with the provider's capacity / location-unavailable error (only in `locations`, when given).
    capacity: bool = False
    locations: list[str] = field(default_factory=list)
    # The next N creates really create the VM, then the answer is lost: "504" (gateway timeout) or "close".
    drop_after_create: int = 0
    drop_mode: str = "504"
    # Dormant until the provider next creates a VM: an outage that starts right after a create went through (the
    # retried create's look-up then fails, which is how a lost create can leave a VM nobody knows about).
    after_create: bool = False
    armed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultError(ValueError):
    """A fault body the control endpoint refuses; the message names the field."""


def parse_fault(body: dict[str, Any]) -> Fault:
    provider = body.get("provider")
    if provider not in PROVIDERS:
        raise FaultError(f"provider: must be one of {', '.join(PROVIDERS)}")
    endpoint = body.get("endpoint", "*")
    if endpoint != "*" and endpoint not in ENDPOINT_KEYS:
        raise FaultError(f"endpoint: must be '*' or one of {', '.join(ENDPOINT_KEYS)}")
    unknown = set(body) - {"provider", "endpoint", *_FIELDS}
    if unknown:
        raise FaultError(f"unknown field(s): {', '.join(sorted(unknown))}; allowed: {', '.join(_FIELDS)}")
    fault = Fault(provider=provider, endpoint=endpoint)
    try:
        fault.error_rate = float(body.get("error_rate", 0.0))
        fault.status = int(body.get("status", 503))
        fault.storm_429 = int(body.get("storm_429", 0))
        fault.retry_after_s = float(body.get("retry_after_s", 1.0))
        fault.slow_ms = int(body.get("slow_ms", 0))
        fault.capacity = bool(body.get("capacity", False))
        fault.locations = [str(loc) for loc in body.get("locations", [])]
        fault.drop_after_create = int(body.get("drop_after_create", 0))
        fault.drop_mode = str(body.get("drop_mode", "504"))
        fault.after_create = body.get("after_create", False)
        fault.armed = not fault.after_create
    except (TypeError, ValueError) as exc:
        raise FaultError(f"bad value: {exc}") from exc
    if not 0.0 <= fault.error_rate <= 1.0:
        raise FaultError("error_rate: must be between 0 and 1")
    if not 400 <= fault.status <= 599:
        raise FaultError("status: must be a 4xx or 5xx HTTP status")
    if fault.drop_mode not in ("504", "close"):
        raise FaultError("drop_mode: must be '504' or 'close'")
    if not isinstance(fault.after_create, bool):
        raise FaultError("after_create: must be true or false")
    return fault


class Faults:
    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._faults: dict[tuple[str, str], Fault] = {}
        self._rngs: dict[tuple[str, str], random.Random] = {}

    def set(self, fault: Fault) -> None:
        key = (fault.provider, fault.endpoint)
        with self._lock:
            self._faults[key] = fault
            # Each fault rolls its own seeded sequence, so one fault's draws never shift another's.
            self._rngs[key] = random.Random(f"{self._seed}/{fault.provider}/{fault.endpoint}")  # noqa: S311 - reproducible, not secret

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rngs.clear()

    def as_dicts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults.values()]

    def _matching(self, provider: str, endpoint: str) -> list[tuple[tuple[str, str], Fault]]:
        keys = [(provider, endpoint), (provider, "*")]
        return [(k, self._faults[k]) for k in keys if k in self._faults and self._faults[k].armed]

    def created(self, provider: str) -> None:
        """A create of `provider` went through: faults waiting for one (`after_create`) apply from now on."""
        with self._lock:
            for (fault_provider, _), fault in self._faults.items():
                if fault_provider == provider:
                    fault.armed = True

    def slow_ms(self, provider: str, endpoint: str) -> int:
        with self._lock:
            return max((f.slow_ms for _, f in self._matching(provider, endpoint)), default=0)

    def take_storm(self, provider: str, endpoint: str) -> float | None:
        """Consume one storm request; returns the retry-after in seconds, or None when no storm is on."""
        with self._lock:
            for _, fault in self._matching(provider, endpoint):
                if fault.storm_429 > 0:
                    fault.storm_429 -= 1
                    return fault.retry_after_s
        return None

    def roll_error(self, provider: str, endpoint: str) -> int | None:
        """The status to fail this request with, or None."""
        with self._lock:
            for key, fault in self._matching(provider, endpoint):
                if fault.error_rate > 0 and self._rngs[key].random() < fault.error_rate:
                    return fault.status
        return None

    def capacity_blocks(self, provider: str, location: str) -> bool:
        with self._lock:
            return any(
                f.capacity and (not f.locations or location in f.locations)
                for _, f in self._matching(provider, "create")
            )

    def take_drop(self, provider: str) -> str | None:
        """Consume one dropped create; returns the drop mode, or None."""
        with self._lock:
            for _, fault in self._matching(provider, "create"):
                if fault.drop_after_create > 0:
                    fault.drop_after_create -= 1
                    return fault.drop_mode
        return None
