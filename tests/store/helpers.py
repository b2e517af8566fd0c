"""Shared builders for the registry tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from contracts.models import AgentState, Transition

T = TypeVar("T")


def transition(**overrides: Any) -> Transition:
    values: dict[str, Any] = {
        "event_key": "agent-a1/requested",
        "agent_id": "a1",
        "account_id": "acme",
        "state": AgentState.PROVISIONING,
        "action": "agent.requested",
        "name": "helper",
        "provider": "local",
        "region": "eu-central",
        "size": "small",
    }
    values.update(overrides)
    return Transition(**values)


def run_together(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run fn(0..n-1) in n threads released at the same instant by a barrier (no sleeps)."""
    barrier = threading.Barrier(n)

    def call(i: int) -> T:
        barrier.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))
