"""Waiting, without guessing, until a live lifecycle has handled everything sent to it."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from contracts.models import AgentStatus
from tests.stack import Stack, eventually


async def settled(handle: WorkflowHandle[Any, Any], stack: Stack, agent_id: str) -> AgentStatus:
    """Send the sentinel; wait until the workflow has handled it (so everything sent before it) and is quiescent: no
    activity (a refusal's audit) in flight and no workflow task pending, so a failure would have surfaced by now. A
    failed workflow task (a handler that raised) fails the test at once instead of waiting for the deadline."""
    marker = f"sentinel-{uuid.uuid4().hex[:8]}"
    await handle.signal("update_skills", {"skills": [], marker: 1})

    async def seen() -> AgentStatus | None:
        async for event in handle.fetch_history_events():
            failed = event.workflow_task_failed_event_attributes
            assert event.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, failed.failure.message
        raw = (await handle.describe()).raw_description
        if raw.workflow_execution_info.status != WorkflowExecutionStatus.RUNNING.value:
            return await stack.client.status(agent_id)
        if raw.pending_activities or raw.HasField("pending_workflow_task"):
            return None  # (a query now would wait for the workflow task)
        status = await stack.client.status(agent_id)
        return status if marker in status.last_error else None

    return await eventually(seen, timeout_s=10, what=f"the workflow handling {marker} and settling")
