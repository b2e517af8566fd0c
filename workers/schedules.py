"""Install the maintenance schedules: KeyRotation, OrphanSweep, FleetHealth. Idempotent: create, or update in place.

`lobstack schedules install` and `lobstack dev` call `install_schedules`; running it again with other intervals
updates the three schedules (keeping an operator's pause) and never adds a fourth.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from contracts.maintenance_models import (
    FLEET_HEALTH_SCHEDULE,
    KEY_ROTATION_SCHEDULE,
    ORPHAN_SWEEP_SCHEDULE,
    FleetHealthInput,
    RotationInput,
    SweepInput,
)
from contracts.queues import WORKFLOW_QUEUE
from workflows.fleet_health import FleetHealthWorkflow
from workflows.key_rotation import KeyRotationWorkflow
from workflows.orphan_sweep import OrphanSweepWorkflow

__all__ = ["SCHEDULE_IDS", "InstalledSchedule", "build_schedules", "install_schedules"]

SCHEDULE_IDS = (KEY_ROTATION_SCHEDULE, ORPHAN_SWEEP_SCHEDULE, FLEET_HEALTH_SCHEDULE)


@dataclass(frozen=True)
class InstalledSchedule:
    schedule_id: str
    created: bool  # False: it existed and was updated


def build_schedules(
    *,
    task_queue: str = WORKFLOW_QUEUE,
    rotation_every: timedelta = timedelta(days=90),
    sweep_every: timedelta = timedelta(hours=1),
    health_every: timedelta = timedelta(seconds=30),
) -> dict[str, Schedule]:
    """The three schedules by id. Every one skips a run while the previous one still runs: two rotations or two
    sweeps at once would only race each other, and a slow fleet probe must not pile up."""

    def schedule(
        run: Callable[[Any, Any], Awaitable[Any]], arg: object, workflow_id: str, every: timedelta, note: str
    ) -> Schedule:
        return Schedule(
            action=ScheduleActionStartWorkflow(
                run,
                arg,
                id=workflow_id,  # Temporal appends the scheduled time, so each run has its own id
                task_queue=task_queue,
                memo={"purpose": note},
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(note=note),
        )

    return {
        KEY_ROTATION_SCHEDULE: schedule(
            KeyRotationWorkflow.run,
            RotationInput(),
            KEY_ROTATION_SCHEDULE,
            rotation_every,
            "Lobstack key rotation: rotate every agent's Transit key, rewrap stored agent data, then raise "
            "min_decryption_version; audited per agent as keys.rotated.",
        ),
        ORPHAN_SWEEP_SCHEDULE: schedule(
            OrphanSweepWorkflow.run,
            SweepInput(),
            ORPHAN_SWEEP_SCHEDULE,
            sweep_every,
            "Lobstack orphan sweep: remove labelled VMs and agent Vault state (policy, AppRole, Transit key, KV, "
            "tokens) that no running AgentLifecycle owns; audited as orphan.swept by orphan-sweep.",
        ),
        FLEET_HEALTH_SCHEDULE: schedule(
            FleetHealthWorkflow.run,
            FleetHealthInput(),
            FLEET_HEALTH_SCHEDULE,
            health_every,
            "Lobstack fleet health: one batched probe of every running agent; signals health_changed to a "
            "lifecycle only when its agent's health changes. Overlap: skip.",
        ),
    }


async def install_schedules(
    client: Client,
    *,
    task_queue: str = WORKFLOW_QUEUE,
    rotation_every: timedelta = timedelta(days=90),
    sweep_every: timedelta = timedelta(hours=1),
    health_every: timedelta = timedelta(seconds=30),
) -> list[InstalledSchedule]:
    """Create each schedule, or update it to this definition when it already exists."""
    installed = []
    wanted = build_schedules(
        task_queue=task_queue, rotation_every=rotation_every, sweep_every=sweep_every, health_every=health_every
    )
    for schedule_id, schedule in wanted.items():
        try:
            await client.create_schedule(schedule_id, schedule)
            installed.append(InstalledSchedule(schedule_id, created=True))
            continue
        except ScheduleAlreadyRunningError:
            pass

        def replace(current: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
            # Keep an operator's pause (and its note) across reinstalls; everything else is ours to define.
            old_state = current.description.schedule.state
            if old_state.paused:
                new.state = ScheduleState(note=old_state.note, paused=True)
            return ScheduleUpdate(schedule=new)

        await client.get_schedule_handle(schedule_id).update(replace)
        installed.append(InstalledSchedule(schedule_id, created=False))
    return installed
