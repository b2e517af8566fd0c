"""Decisions answered with feedback (issue 13, item 2) on the dev server, through the paths the Web UI uses.

The `decide` update's validator refuses what can never count before it enters history, so the Web UI's "Send an
Update" dialog shows the reason; the `approve`/`reject` signals cannot answer, so their refusal stays in the current
details and the status until a valid decision arrives. The body the workflow shows cannot be sent unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle

from contracts.identifiers import workflow_id
from contracts.models import AgentState, ApprovalState
from tests.hostile import raw
from tests.stack import Stack, eventually
from workflows.decisions import DECISION_BODY, UPDATE_BODY, YOUR_NAME
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def details(handle: WorkflowHandle[Any, Any]) -> str:
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    text: str = meta.current_details
    return text


async def refused_update(handle: WorkflowHandle[Any, Any], *bodies: object) -> str:
    """Send the update as the Web UI does; the refusal's message, as its dialog shows it."""
    outcome = await raw.update_outcome(handle._client, handle.id, "decide", [raw.json_payload(b) for b in bodies])
    assert outcome.WhichOneof("value") == "failure", f"update with {bodies!r} was accepted"
    message: str = outcome.failure.message
    return message


async def updates_in_history(handle: WorkflowHandle[Any, Any], name: str = "decide") -> int:
    """Accepted updates named `name` (the client's own `admission` update, sent at create, is not a decision)."""
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return len(
        [
            e
            async for e in handle.fetch_history_events()
            if e.event_type == accepted
            and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name == name
        ]
    )


async def test_agent_approval_refuses_in_the_update_dialog_and_keeps_signal_refusals_visible(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True, approvers=["alice"]))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        shown = await details(handle)
        assert f"`{DECISION_BODY}`" in shown and YOUR_NAME in shown

        # The update dialog: each refusal comes back with its reason, and nothing enters history.
        pasted = await refused_update(handle, json.loads(UPDATE_BODY))
        assert "put your own approver name" in pasted
        assert "placeholder" in await refused_update(handle, {"approver": "Your-Name", "approved": True})
        assert "placeholder" in await refused_update(handle, {"approver": "jo@mail.example.com", "approved": True})
        assert "not an allowed approver here" in await refused_update(handle, {"approver": "mallory"})
        assert "approver" in await refused_update(handle, {"approver": 7})
        assert "exactly one" in await refused_update(handle, {"approver": "alice"}, {"extra": 1})
        assert "unknown" in (await refused_update(handle, {"approver": "alice", "approvd": True})).lower()
        assert await updates_in_history(handle) == 0

        # The signal path: pasted unchanged, it is refused, and the refusal stays in the details and the status ...
        await handle.signal("approve", json.loads(DECISION_BODY))

        async def refusal_shown() -> str | None:
            text = await details(handle)
            return text if "Last message refused" in text else None

        text = await eventually(refusal_shown, timeout_s=20, what="the refused signal in the current details")
        assert "`approve`" in text and "put your own approver name" in text
        status = await stack.client.status(agent_id)
        assert status.state == AgentState.PENDING_APPROVAL and "put your own approver name" in status.last_error
        # ... through a later query, and a refused update does not clear it ...
        await refused_update(handle, {"approver": "mallory"})
        assert "Last message refused" in await details(handle)
        # ... until a valid decision arrives.
        approved = await stack.client.approve(agent_id, approver="alice", reason="ok")
        assert approved.approved_by == "alice"
        assert "refused" not in await details(handle)
        assert "not waiting for a decision" in await refused_update(handle, {"approver": "alice"})
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    refused = [
        (e.actor, e.details.get("handler")) for e in stack.registry.events(agent_id=agent_id) if "refused" in e.action
    ]
    # Only the signal's refusal entered history, so only it is audited.
    assert refused == [(YOUR_NAME, "approve")]
    assert await updates_in_history(handle) == 1
    assert await raw.workflow_task_failures(handle) == []


async def test_tool_approval_refuses_in_the_update_dialog_and_keeps_signal_refusals_visible(stack: Stack) -> None:
    async with stack.workers():
        approval = await stack.start_approval("t-feedback", approvers=["bob"])

        async def published() -> str | None:
            return await details(approval) or None

        shown = await eventually(published, timeout_s=20, what="the request in the current details")
        assert f"`{DECISION_BODY}`" in shown and '"bob"' not in shown
        assert "put your own approver name" in await refused_update(approval, json.loads(UPDATE_BODY))
        assert "placeholder" in await refused_update(approval, {"approver": "approver", "approved": True})
        assert "not an allowed approver here" in await refused_update(approval, {"approver": "mallory"})
        assert await updates_in_history(approval) == 0

        await approval.signal("reject", json.loads(DECISION_BODY))

        async def refused() -> int | None:
            found = (await approval.query(ToolApprovalWorkflow.status)).refused
            return found or None

        assert await eventually(refused, timeout_s=20, what="the refused signal counted") == 1
        assert "put your own approver name" in await details(approval)
        status = await stack.client.decide_approval(approval.id, approver="bob", approved=True, reason="fine")
        assert (status.state, status.decided_by) == (ApprovalState.APPROVED, "bob")
        assert "refused" not in await details(approval)
        await approval.result()
    trail = [(e.action, e.actor) for e in stack.registry.events(agent_id="t-feedback") if "refused" in e.action]
    assert trail == [("approval.refused", YOUR_NAME)]
    assert await raw.workflow_task_failures(approval) == []
