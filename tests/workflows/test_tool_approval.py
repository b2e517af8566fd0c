"""ToolApproval on the time-skipping server (deadlines pass in milliseconds) and the dev server (the UI path)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import devstack
from clients.client import DecisionRefused, LobstackClient
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.models import ApprovalState, ApprovalStatus, Decision, ToolApprovalInput
from tests.stack import Stack, make_stack
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def request(stack: Stack, **overrides: Any) -> ToolApprovalInput:
    fields: dict[str, Any] = {
        "agent_id": f"t-{uuid.uuid4().hex[:12]}",
        "account_id": "acme",
        "request_id": uuid.uuid4().hex[:12],
        "tool": "email.send",
        "arguments": {"to": "ceo@example.com", "subject": "Q3"},
        "requested_by": "agent-x",
        "approvers": ["alice", "bob"],
        "timeout_s": 3600,
    }
    fields.update(overrides)
    return ToolApprovalInput(**fields)


async def start(
    client: Client, stack: Stack, req: ToolApprovalInput
) -> WorkflowHandle[ToolApprovalWorkflow, ApprovalStatus]:
    return await client.start_workflow(
        ToolApprovalWorkflow.run,
        req,
        id=approval_workflow_id(req.agent_id, req.request_id),
        task_queue=stack.task_queue,
    )


@pytest.fixture
def ts_stack(temporal_time_skipping: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path) -> Stack:
    return make_stack(temporal_time_skipping.client, openbao, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)


async def test_approve(temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack) -> None:
    req = request(ts_stack)
    async with ts_stack.workers():
        handle = await start(temporal_time_skipping.client, ts_stack, req)
        await handle.signal(ToolApprovalWorkflow.approve, Decision(approver="alice", reason="expected mail"))
        result = await handle.result()
    assert (result.state, result.decided_by, result.reason) == (ApprovalState.APPROVED, "alice", "expected mail")
    trail = [(e.action, e.actor) for e in ts_stack.registry.events(agent_id=req.agent_id)]
    assert trail == [("approval.requested", "agent-x"), ("approval.approved", "alice")]


async def test_reject(temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack) -> None:
    req = request(ts_stack)
    async with ts_stack.workers():
        handle = await start(temporal_time_skipping.client, ts_stack, req)
        await handle.signal(ToolApprovalWorkflow.reject, Decision(approver="bob", reason="no"))
        result = await handle.result()
    assert (result.state, result.decided_by) == (ApprovalState.REJECTED, "bob")


async def test_no_decision_expires_as_rejected(temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack) -> None:
    req = request(ts_stack, timeout_s=3600)
    async with ts_stack.workers():
        handle = await start(temporal_time_skipping.client, ts_stack, req)
        await temporal_time_skipping.sleep(timedelta(hours=1, seconds=1))
        result = await handle.result()
    assert result.state == ApprovalState.EXPIRED and not result.decided_by
    assert result.decided_at is not None and result.requested_at is not None
    assert result.decided_at - result.requested_at >= timedelta(hours=1)
    assert ts_stack.registry.events(agent_id=req.agent_id)[-1].action == "approval.expired"


async def test_escalation_after_the_first_timeout(temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack) -> None:
    req = request(ts_stack, timeout_s=600, escalation_approvers=["cto"], escalation_timeout_s=1800)
    async with ts_stack.workers():
        handle = await start(temporal_time_skipping.client, ts_stack, req)
        await temporal_time_skipping.sleep(timedelta(seconds=601))
        status = await handle.query(ToolApprovalWorkflow.status)
        assert status.escalated and status.state == ApprovalState.PENDING and "cto" in status.approvers
        await handle.signal(ToolApprovalWorkflow.approve, Decision(approver="cto", reason="escalated ok"))
        result = await handle.result()
    assert (result.state, result.decided_by, result.escalated) == (ApprovalState.APPROVED, "cto", True)
    assert "approval.escalated" in [e.action for e in ts_stack.registry.events(agent_id=req.agent_id)]


async def test_escalation_also_expires(temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack) -> None:
    req = request(ts_stack, timeout_s=600, escalation_approvers=["cto"], escalation_timeout_s=600)
    async with ts_stack.workers():
        handle = await start(temporal_time_skipping.client, ts_stack, req)
        await temporal_time_skipping.sleep(timedelta(seconds=1201))
        result = await handle.result()
    assert result.state == ApprovalState.EXPIRED and result.escalated


async def test_unauthorized_signal_is_refused_and_audited(
    temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack
) -> None:
    req = request(ts_stack)
    async with ts_stack.workers():
        handle = await start(temporal_time_skipping.client, ts_stack, req)
        await handle.signal(ToolApprovalWorkflow.approve, Decision(approver="mallory", reason="trust me"))
        status = await handle.query(ToolApprovalWorkflow.status)
        assert status.state == ApprovalState.PENDING and status.refused == 1
        await handle.signal(ToolApprovalWorkflow.reject, Decision(approver="alice", reason="not mallory's call"))
        result = await handle.result()
    assert (result.state, result.decided_by) == (ApprovalState.REJECTED, "alice")
    refused = [e for e in ts_stack.registry.events(agent_id=req.agent_id) if e.action == "approval.refused"]
    assert [(e.actor, "not an allowed approver" in e.reason) for e in refused] == [("mallory", True)]


async def test_cli_path_returns_the_refusal_to_the_caller(
    temporal_time_skipping: WorkflowEnvironment, ts_stack: Stack
) -> None:
    req = request(ts_stack)
    client = LobstackClient(temporal_time_skipping.client, task_queue=ts_stack.task_queue)
    approval_id = approval_workflow_id(req.agent_id, req.request_id)
    async with ts_stack.workers():
        await start(temporal_time_skipping.client, ts_stack, req)
        with pytest.raises(DecisionRefused, match=r"not an allowed approver here \(allowed: "):
            await client.decide_approval(approval_id, approver="mallory", approved=True)
        status = await client.decide_approval(approval_id, approver="bob", approved=True, reason="fine")
        assert (status.state, status.decided_by) == (ApprovalState.APPROVED, "bob")
        with pytest.raises(DecisionRefused, match="not waiting for a decision"):
            await client.decide_approval(approval_id, approver="alice", approved=False)
    # Refused by the update's validator, before history: the caller heard why; there is nothing to audit.
    assert "approval.refused" not in [e.action for e in ts_stack.registry.events(agent_id=req.agent_id)]


async def test_pending_approvals_are_findable_in_the_ui(temporal_dev: WorkflowEnvironment, stack: Stack) -> None:
    """On the dev server: the search attribute and the current details a person reads in the Web UI."""
    req = request(stack, publish_search_attribute=True)
    async with stack.workers():
        handle = await start(temporal_dev.client, stack, req)
        found = []
        for _ in range(100):
            query = f"WorkflowId = '{handle.id}' AND LobstackApprovalState = 'pending'"
            found = [wf.id async for wf in temporal_dev.client.list_workflows(query)]
            if found:
                break
            await temporal_dev.sleep(0.1)
        assert found == [handle.id]
        # What the Web UI shows: the workflow's current details and its signals, via the built-in metadata query.
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "send signal `approve`" in meta.current_details and '"approver"' in meta.current_details
        assert "email.send" in meta.current_details and "alice, bob" in meta.current_details
        assert {d.name for d in meta.definition.signal_definitions} >= {"approve", "reject"}
        client = LobstackClient(temporal_dev.client, task_queue=stack.task_queue)
        pending = [a.approval_id for a in await client.list_approvals()]
        assert handle.id in pending
        await client.decide_approval(handle.id, approver="alice", approved=True)
        await handle.result()
