"""The maintenance schedules on the Temporal dev server (the time-skipping server has no schedules)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests.stack import eventually
from workers.schedules import SCHEDULE_IDS, install_schedules

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _delete_all(client: Client) -> None:
    for schedule_id in SCHEDULE_IDS:
        with contextlib.suppress(RPCError):
            await client.get_schedule_handle(schedule_id).delete()


@pytest.fixture
async def client(temporal_dev: WorkflowEnvironment) -> AsyncIterator[Client]:
    # The ids are fixed by design: start from none and leave none behind for the next test.
    await _delete_all(temporal_dev.client)
    yield temporal_dev.client
    await _delete_all(temporal_dev.client)


async def _ours(client: Client) -> list[str]:
    return sorted([s.id async for s in await client.list_schedules() if s.id in SCHEDULE_IDS])


async def test_install_creates_three_schedules_then_updates_them_in_place(client: Client) -> None:
    queue = f"test-{uuid.uuid4().hex[:10]}"
    try:
        await _install_and_update(client, queue)
    finally:
        # A run fired meanwhile would wait forever on this queue, which no worker polls.
        async for execution in client.list_workflows(f"TaskQueue='{queue}' AND ExecutionStatus='Running'"):
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(execution.id).terminate(reason="test cleanup")


async def _install_and_update(client: Client, queue: str) -> None:
    first = await install_schedules(client, task_queue=queue)
    assert [(i.schedule_id, i.created) for i in first] == [(s, True) for s in SCHEDULE_IDS]

    expected = {
        "lobstack-key-rotation": ("KeyRotation", timedelta(days=90)),
        "lobstack-orphan-sweep": ("OrphanSweep", timedelta(hours=1)),
        "lobstack-fleet-health": ("FleetHealth", timedelta(seconds=30)),
    }
    for schedule_id, (workflow, every) in expected.items():
        described = await client.get_schedule_handle(schedule_id).describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == workflow and action.task_queue == queue and action.id == schedule_id
        assert [i.every for i in described.schedule.spec.intervals] == [every]
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert (described.schedule.state.note or "").startswith("Lobstack ")
        assert "purpose" in (action.memo or {})

    # An operator pauses the sweep; a reinstall with another interval updates all three and keeps the pause.
    await client.get_schedule_handle("lobstack-orphan-sweep").pause(note="investigating")
    second = await install_schedules(client, task_queue=queue, health_every=timedelta(seconds=45))
    assert [(i.schedule_id, i.created) for i in second] == [(s, False) for s in SCHEDULE_IDS]

    async def exactly_three() -> list[str] | None:  # schedule listing goes through visibility: poll it
        ours = await _ours(client)
        return ours if ours == sorted(SCHEDULE_IDS) else None

    await eventually(exactly_three, what="exactly the three schedules listed")
    health = await client.get_schedule_handle("lobstack-fleet-health").describe()
    assert [i.every for i in health.schedule.spec.intervals] == [timedelta(seconds=45)]
    sweep = await client.get_schedule_handle("lobstack-orphan-sweep").describe()
    assert sweep.schedule.state.paused and sweep.schedule.state.note == "investigating"
