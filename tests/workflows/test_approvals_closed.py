"""A gone agent's tool approvals close (issue 20 item 2): destroy, failure and the orphan sweep cancel every approval
the agent has open, with the reason, audited; a decision sent afterwards is refused with a clear message."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle

from clients.client import ApprovalClosed
from contracts.maintenance_models import SweepInput, SweepResult
from contracts.models import AgentState, ApprovalState, ApprovalStatus
from tests.clients.cli_run import arun
from tests.maintenance.helpers import run_now
from tests.stack import Stack, eventually
from workflows.orphan_sweep import OrphanSweepWorkflow
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def open_approval(stack: Stack, agent_id: str) -> WorkflowHandle[ToolApprovalWorkflow, ApprovalStatus]:
    """What the gateway starts when the agent's bridge asks to send an email."""
    handle = await stack.start_approval(agent_id, approvers=["alice"])

    async def pending() -> ApprovalStatus | None:
        status = await handle.query(ToolApprovalWorkflow.status)
        return status if status.state == ApprovalState.PENDING else None

    await eventually(pending, timeout_s=20, what="the approval pending")

    async def visible() -> bool | None:
        # The lifecycle finds approvals through visibility, which lags a start by a moment (see activities/approvals).
        found = [w async for w in stack.temporal.list_workflows(f'WorkflowId = "{handle.id}"')]
        return True if found else None

    await eventually(visible, timeout_s=20, what="the approval in visibility")
    return handle


async def closed(handle: WorkflowHandle[ToolApprovalWorkflow, ApprovalStatus]) -> ApprovalStatus:
    """The approval's final status; bounded, so an approval left open fails the test instead of hanging it."""
    try:
        return await asyncio.wait_for(handle.result(), timeout=60)
    except TimeoutError:
        raise AssertionError(f"approval {handle.id} is still open") from None


def cancelled_events(stack: Stack, agent_id: str) -> list[str]:
    return [e.reason for e in stack.registry.events(agent_id=agent_id) if e.action == "approval.cancelled"]


async def test_destroy_closes_the_agents_open_approvals_and_a_later_decision_is_refused(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec())
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        first, second = await open_approval(stack, agent_id), await open_approval(stack, agent_id)
        await stack.client.destroy(agent_id, requested_by="bob", reason="project over")
        assert (await stack.client.result(agent_id)).state == AgentState.DESTROYED
        for handle in (first, second):
            final = await closed(handle)
            assert final.state == ApprovalState.CANCELLED
            assert final.reason == f"agent {agent_id} is destroyed: project over"
        with pytest.raises(ApprovalClosed):
            await stack.client.decide_approval(first.id, approver="alice", approved=True)
        # The CLI says so in one line, exit status 1.
        done = await arun(
            "--address",
            stack.temporal.service_client.config.target_host,
            "--task-queue",
            stack.task_queue,
            "approvals",
            "approve",
            second.id,
            "--approver",
            "alice",
        )
        assert done.code == 1 and "closed" in done.err and "Traceback" not in done.err, done
    assert cancelled_events(stack, agent_id) == [f"agent {agent_id} is destroyed: project over"] * 2


async def test_a_failed_agent_closes_its_approvals(stack: Stack, never_healthy_argv: list[str]) -> None:
    async with stack.workers(stack.local_with(never_healthy_argv)):
        agent_id = await stack.client.create_agent(stack.spec(health_timeout_s=8))
        await stack.client.wait_for(agent_id, {AgentState.PROVISIONING}, timeout_s=20)
        handle = await open_approval(stack, agent_id)  # as anyone holding a Temporal client could
        with pytest.raises(WorkflowFailureError):
            await stack.client.result(agent_id)
        final = await closed(handle)
    assert final.state == ApprovalState.CANCELLED and final.reason.startswith(f"agent {agent_id} is failed: ")
    assert len(cancelled_events(stack, agent_id)) == 1


async def test_the_orphan_sweep_closes_approvals_no_lifecycle_owns(stack: Stack) -> None:
    async with stack.workers():
        orphan = f"t-{uuid.uuid4().hex[:16]}"  # an agent whose lifecycle is gone (terminated, or never started)
        handle = await open_approval(stack, orphan)
        dry: SweepResult = await run_now(stack, OrphanSweepWorkflow.run, SweepInput(dry_run=True), "sweep")
        assert dry.found.approvals >= 1
        assert (await handle.query(ToolApprovalWorkflow.status)).state == ApprovalState.PENDING
        swept: SweepResult = await run_now(stack, OrphanSweepWorkflow.run, SweepInput(), "sweep")
        assert orphan in swept.found.agent_ids and swept.found.approvals >= 1
        final = await closed(handle)
    assert final.state == ApprovalState.CANCELLED and "no running lifecycle" in final.reason
    [swept_event] = [e for e in stack.registry.events(agent_id=orphan) if e.action == "orphan.swept"]
    assert swept_event.details["approvals"] == "1"
    assert len(cancelled_events(stack, orphan)) == 1
