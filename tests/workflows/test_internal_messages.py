"""Internal signals: only the system's sealed `health_changed` counts; anyone else's is refused, audited and shown."""

from __future__ import annotations

import dataclasses

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle

from activities.internal_messages import internal_key
from contracts.identifiers import workflow_id
from contracts.internal_messages import sealed_body
from contracts.models import AgentState, AgentStatus, HealthChange
from contracts.workflow_names import HEALTH_CHANGED_SIGNAL
from tests.stack import Stack, eventually
from workers.replay import workflow_replayer

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOWN = HealthChange(False, "unreachable", "timeout", consecutive_failures=5)


async def _refused(stack: Stack, agent_id: str, handle: WorkflowHandle[object, object], why: str) -> AgentStatus:
    """Once the refusal shows: the agent is still running and healthy, and the current details say why."""

    async def shown() -> AgentStatus | None:
        status = await stack.client.status(agent_id)
        return status if why in status.last_error else None

    status = await eventually(shown, what=f"the refusal ({why})")
    assert (status.state, status.health, status.consecutive_failures) == (AgentState.RUNNING, "healthy", 0)
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "`health_changed`" in meta.current_details and why in meta.current_details
    return status


async def test_health_changed_from_outside_is_refused_audited_and_changes_nothing(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(unhealthy_threshold=1))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await stack.health_changed(agent_id, HealthChange(True, "healthy"))
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))

        # A raw client with the right body and a `sent_by`-like claim: no seal.
        await handle.signal(HEALTH_CHANGED_SIGNAL, {**dataclasses.asdict(DOWN), "requested_by": "fleet-monitor"})
        await _refused(stack, agent_id, handle, "has no seal")

        # A seal made with another key (a guess, or a copied codec key): not the system's.
        forged = sealed_body(b"k" * 32, workflow_id(agent_id), HEALTH_CHANGED_SIGNAL, dataclasses.asdict(DOWN))
        await handle.signal(HEALTH_CHANGED_SIGNAL, forged)
        await _refused(stack, agent_id, handle, "not the system's")

        # A real seal for another agent, moved here: the seal covers the workflow id.
        moved = sealed_body(internal_key(), workflow_id("t-other"), HEALTH_CHANGED_SIGNAL, dataclasses.asdict(DOWN))
        await handle.signal(HEALTH_CHANGED_SIGNAL, {**moved})
        await _refused(stack, agent_id, handle, "not the system's")

        # The system's own message still counts; sent again as copied from the history, it is a replay.
        real = sealed_body(internal_key(), workflow_id(agent_id), HEALTH_CHANGED_SIGNAL, dataclasses.asdict(DOWN))
        await handle.signal(HEALTH_CHANGED_SIGNAL, real)
        degraded = await stack.client.wait_for(agent_id, {AgentState.DEGRADED}, timeout_s=30)
        assert degraded.health == "unreachable"
        await stack.health_changed(agent_id, HealthChange(True, "healthy"))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=30)
        await handle.signal(HEALTH_CHANGED_SIGNAL, real)
        await _refused(stack, agent_id, handle, "a replay of an earlier one")

        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    # The new path (patch marker, seal checks as local activities) replays as it ran.
    history = await handle.fetch_history()
    await workflow_replayer(stack.temporal.data_converter).replay_workflow(history)
    refusals = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "message.refused"]
    assert [e.details["handler"] for e in refusals] == ["health_changed"] * 4
    assert refusals[0].actor == "fleet-monitor"  # the claim is recorded as claimed, and counted for nothing


async def test_handler_descriptions_say_which_are_internal(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec())
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        signals = {s.name: s.description for s in meta.definition.signal_definitions}
        assert signals["health_changed"].startswith("Internal, for the system only")
        for person_facing in ("approve", "reject", "destroy", "update_skills"):
            assert "Internal" not in signals[person_facing] and '"' in signals[person_facing], person_facing
        updates = {u.name: u.description for u in meta.definition.update_definitions}
        assert '"approver"' in updates["decide"]
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
