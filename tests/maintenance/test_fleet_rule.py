"""The fleet monitor's signalling rule (`decide`): only changes, the first failure, the threshold, the recovery."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.maintenance import decide
from contracts.models import HealthReport
from store import HealthRecord

NOW = datetime.now(UTC)
ADDR = "http://127.0.0.1:9"


def run(reports: list[bool], *, threshold: int = 3, address: str = ADDR) -> list[int | None]:
    """Feed a sequence of probe outcomes; returns, per probe, the signalled failure count (None: no signal)."""
    state: HealthRecord | None = None
    signalled: list[int | None] = []
    for healthy in reports:
        report = HealthReport("a1", healthy, "healthy" if healthy else "unreachable")
        state, change = decide(state, address, report, threshold=threshold, now=NOW)
        signalled.append(None if change is None else change.consecutive_failures)
    return signalled


def test_healthy_agents_are_never_signalled() -> None:
    assert run([True, True, True]) == [None, None, None]


def test_first_failure_then_threshold_then_recovery() -> None:
    assert run([True, False, False, False, False, True, True]) == [None, 1, None, 3, None, 0, None]


def test_unhealthy_at_first_sight_signals_once() -> None:
    assert run([False, False]) == [1, None]


def test_a_threshold_of_one_signals_once() -> None:
    assert run([False, False], threshold=1) == [1, None]


def test_a_new_address_starts_over() -> None:
    old = HealthRecord("a1", False, "unreachable", 5, ADDR, NOW)
    report = HealthReport("a1", True, "healthy")
    state, change = decide(old, "http://127.0.0.1:10", report, threshold=3, now=NOW)
    assert change is None and state.healthy and state.consecutive_failures == 0
