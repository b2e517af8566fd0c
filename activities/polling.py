"""Polling schedules whose overshoot is bounded: how long to wait before looking again.

A geometric backoff (x1.5 per poll) can see a VM that was ready at 5.0 s only at 7 s: the pause before each look grows
with the number of looks. Here the pause is a fixed fraction of the time waited so far, so whatever becomes ready at
time T is seen by T + max(floor, fraction * T) (and never more than `ceiling` late), while the number of looks still
grows only logarithmically with T once past `floor / fraction`.

Where the wait's typical length is known (a provider's usual boot time), `first_s` skips the looks that would only
see "not yet": the first look happens at `first_s`, and the fraction schedule takes over from there, so a wait of the
usual length costs one look and a longer one is still seen by T + max(floor, fraction * T).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PollSchedule"]


@dataclass(frozen=True)
class PollSchedule:
    """`delay(elapsed)`: the pause before the next look, `elapsed` seconds into the wait."""

    fraction: float
    floor_s: float
    ceiling_s: float
    # When the first look happens; 0: at once.
    first_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.fraction > 0 and 0 < self.floor_s <= self.ceiling_s and self.first_s >= 0):
            raise ValueError("PollSchedule needs fraction > 0, 0 < floor_s <= ceiling_s and first_s >= 0")

    def delay(self, elapsed_s: float) -> float:
        if elapsed_s < self.first_s:
            return self.first_s - max(0.0, elapsed_s)
        return min(self.ceiling_s, max(self.floor_s, self.fraction * max(0.0, elapsed_s)))

    def looks(self, ready_at_s: float) -> tuple[int, float]:
        """For a wait that becomes ready at `ready_at_s`: how many looks it takes (the first at `first_s`) and when
        the one that sees it happens. Pure arithmetic, for tests and for sizing a budget."""
        at, looks = self.first_s, 1
        while at < ready_at_s:
            at += self.delay(at)
            looks += 1
        return looks, at
