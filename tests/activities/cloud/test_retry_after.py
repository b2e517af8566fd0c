"""How long a 429 makes us wait: until the provider takes the next request, not until its whole budget is back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from activities.cloud.adapter_support import retry_after_s
from activities.cloud.hetzner import HetznerProvider
from activities.errors import ProviderRateLimited
from cloudsim.ratelimit import DEFAULT_LIMITS

HETZNER = ("RateLimit-Limit", "RateLimit-Remaining")


def test_a_spent_gradual_budget_is_back_one_request_later() -> None:
    # Hetzner, all 3600 spent: the whole budget is back in an hour, the next request in a second.
    headers = {"RateLimit-Limit": "3600", "RateLimit-Remaining": "0", "RateLimit-Reset": str(time.time() + 3600)}
    assert retry_after_s(headers, "RateLimit-Reset", 60.0, refill_headers=HETZNER) == pytest.approx(1.0, abs=0.01)
    assert retry_after_s(headers, "RateLimit-Reset", 60.0) == 60.0  # read as a full reset: capped, and far too long


def test_a_slow_refill_waits_for_its_step() -> None:
    headers = {"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": str(time.time() + 50)}
    assert retry_after_s(headers, "RateLimit-Reset", 60.0, refill_headers=HETZNER) == pytest.approx(5.0, abs=0.05)


def test_missing_refill_headers_fall_back_to_the_reset() -> None:
    headers = {"RateLimit-Reset": str(time.time() + 3)}
    assert retry_after_s(headers, "RateLimit-Reset", 60.0, refill_headers=HETZNER) == pytest.approx(3.0, abs=0.05)


def test_hetzner_429_from_its_limiter_says_one_second(sim: Any) -> None:
    # A real-rate bucket (one request a second), made 20 deep so it is spent quickly.
    sim.configure(rate_limits={"hetzner": {"limit": 20, "window_s": 20.0}})
    adapter = HetznerProvider(token=sim.tokens["hetzner"], endpoint=sim.hetzner_url)
    try:
        with pytest.raises(ProviderRateLimited) as failure:
            for _ in range(40):
                adapter.get("1")
        assert 1.0 <= failure.value.retry_after_s <= 2.0, failure.value.retry_after_s
        time.sleep(failure.value.retry_after_s)  # the stated wait is the behaviour under test
        assert adapter.get("1") is None
    finally:
        sim.configure(rate_limits={"hetzner": DEFAULT_LIMITS["hetzner"]})
