"""Where a workflow's time went, read from its history: each activity's wait in its queue and its run, in order.

Server-side event times only (one clock), so a bench's polling does not count. Steps are named by activity type and
its occurrence (`record_transition#2`); the gaps between them are the workflow tasks that schedule the next.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory


@dataclass(frozen=True)
class Step:
    name: str
    at_s: float  # scheduled, from the workflow's start
    queued_s: float  # scheduled to started: waiting for a worker slot or a poller
    ran_s: float  # started to closed


def steps(history: WorkflowHistory) -> list[Step]:
    events = history.events
    if not events:
        return []
    start = events[0].event_time.ToDatetime()
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    seen: dict[str, int] = defaultdict(int)
    found: list[Step] = []
    for event in events:
        at = (event.event_time.ToDatetime() - start).total_seconds()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            kind = event.activity_task_scheduled_event_attributes.activity_type.name
            seen[kind] += 1
            scheduled[event.event_id] = (f"{kind}#{seen[kind]}" if seen[kind] > 1 else kind, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.event_type in _CLOSED:
            attrs = getattr(event, _CLOSED[event.event_type])
            first = scheduled.get(attrs.scheduled_event_id)
            if first is None:
                continue
            name, when = first
            began = started.get(attrs.scheduled_event_id, at)
            found.append(Step(name, when, began - when, at - began))
    return found


_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
}


def median_table(runs: list[list[Step]], until: str | None = None) -> list[str]:
    """One line per step: median scheduled-at, queued and run seconds over the runs; what comes after `until` and
    the step right after it (the audit record of its outcome) left out."""
    by_name: dict[str, list[Step]] = defaultdict(list)
    for run in runs:
        cut = len(run)
        for index, step in enumerate(run):
            if step.name == until:
                cut = index + 2
                break
        for step in run[:cut]:
            by_name[step.name].append(step)
    rows = sorted(by_name.items(), key=lambda kv: statistics.median(s.at_s for s in kv[1]))
    lines = [f"  {'step':<34} {'n':>4} {'at ms':>7} {'queued ms':>10} {'ran ms':>7}"]
    for name, found in rows:
        lines.append(
            f"  {name:<34} {len(found):>4} {statistics.median(s.at_s for s in found) * 1000:>7.0f} "
            f"{statistics.median(s.queued_s for s in found) * 1000:>10.1f} "
            f"{statistics.median(s.ran_s for s in found) * 1000:>7.1f}"
        )
    return lines
