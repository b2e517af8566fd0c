"""The bounded-overshoot polling schedule used by wait_vm_running and wait_healthy."""

from __future__ import annotations

import pytest

from activities.cloud.activities import VM_POLL_FLOOR_S, VM_POLL_FRACTION
from activities.polling import PollSchedule


def test_delay_is_a_fraction_of_the_wait_between_floor_and_ceiling() -> None:
    schedule = PollSchedule(0.1, 0.2, 5.0)
    assert schedule.delay(0.0) == 0.2
    assert schedule.delay(1.0) == 0.2
    assert schedule.delay(10.0) == pytest.approx(1.0)
    assert schedule.delay(600.0) == 5.0


@pytest.mark.parametrize("ready_at", [0.0, 0.3, 1.0, 5.0, 12.5, 60.0, 300.0])
def test_overshoot_is_bounded_by_the_fraction_of_the_wait(ready_at: float) -> None:
    schedule = PollSchedule(0.1, 0.2, 5.0)
    _, seen_at = schedule.looks(ready_at)
    assert ready_at <= seen_at <= ready_at + max(0.2, min(5.0, 0.1 * seen_at)) + 1e-9


def test_vm_poll_calls_stay_within_a_small_budget() -> None:
    # The old geometric schedule (0.05 s x1.5) saw a 5 s boot after 11 calls but up to 0.7 s late; this one is at
    # most 0.5 s late for about twice the calls, and a 60 s boot still costs under 50.
    schedule = PollSchedule(VM_POLL_FRACTION, VM_POLL_FLOOR_S, 5.0)
    looks_5, seen_5 = schedule.looks(5.0)
    looks_60, _ = schedule.looks(60.0)
    assert seen_5 - 5.0 <= 0.5
    assert looks_5 <= 25
    assert looks_60 <= 50


def test_no_look_happens_before_the_first_one_at_zero() -> None:
    assert PollSchedule(0.1, 0.2, 5.0).looks(0.0) == (1, 0.0)


def test_a_known_typical_wait_costs_one_look() -> None:
    # A 30 s boot looked at first at its typical 30 s: one look, seen at once; without it, about 30 looks.
    assert PollSchedule(0.1, 0.2, 5.0, first_s=30.0).looks(30.0) == (1, 30.0)
    assert PollSchedule(0.1, 0.2, 5.0).looks(30.0)[0] >= 20


@pytest.mark.parametrize("ready_at", [0.0, 10.0, 29.9, 31.0, 45.0, 120.0])
def test_after_the_first_look_the_overshoot_stays_bounded(ready_at: float) -> None:
    schedule = PollSchedule(0.1, 0.2, 5.0, first_s=30.0)
    looks, seen_at = schedule.looks(ready_at)
    if ready_at <= 30.0:
        assert (looks, seen_at) == (1, 30.0)
    else:
        assert ready_at <= seen_at <= ready_at + min(5.0, 0.1 * seen_at) + 1e-9
        assert schedule.delay(30.0) == pytest.approx(3.0)  # the fraction schedule from the first look on
    assert schedule.delay(12.0) == pytest.approx(18.0)  # before it: straight to the first look


@pytest.mark.parametrize(
    ("fraction", "floor", "ceiling", "first"),
    [(0.0, 0.1, 1.0, 0.0), (0.1, 0.0, 1.0, 0.0), (0.1, 2.0, 1.0, 0.0), (0.1, 0.2, 1.0, -1.0)],
)
def test_bad_schedules_are_refused(fraction: float, floor: float, ceiling: float, first: float) -> None:
    with pytest.raises(ValueError, match="PollSchedule"):
        PollSchedule(fraction, floor, ceiling, first_s=first)
