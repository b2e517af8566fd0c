"""The approval gate on the time-skipping test server: a day passes in milliseconds, for real."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import devstack
from tests.stack import make_stack
from workflows.models import AgentState, Residue
from workflows.spec import DEFAULT_APPROVAL_TIMEOUT_S

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_no_decision_by_the_deadline_rejects(
    temporal_time_skipping: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path
) -> None:
    stack = make_stack(temporal_time_skipping.client, openbao, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    spec = stack.spec(require_approval=True)
    assert spec.approval_timeout_s == DEFAULT_APPROVAL_TIMEOUT_S == 24 * 3600
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await temporal_time_skipping.sleep(timedelta(hours=24, seconds=1))
        result = await stack.client.result(agent_id)
        status = await stack.client.status(agent_id)
    assert result.state == AgentState.REJECTED and "approval expired" in result.reason
    elapsed = status.finished_at - status.created_at
    assert timedelta(hours=24) <= elapsed < timedelta(hours=24, minutes=1)
    assert stack.vault.residue(agent_id) == Residue() and stack.vms_of(agent_id) == 0
    assert [e.action for e in stack.registry.events(agent_id=agent_id)] == ["agent.requested", "agent.approval_expired"]


async def test_a_decision_before_the_deadline_wins(
    temporal_time_skipping: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path
) -> None:
    stack = make_stack(temporal_time_skipping.client, openbao, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    spec = stack.spec(require_approval=True, approval_timeout_s=3600)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await temporal_time_skipping.sleep(timedelta(minutes=59))
        status = await stack.client.status(agent_id)
        assert status.state == AgentState.PENDING_APPROVAL
        await stack.client.reject(agent_id, approver="frank", reason="too risky")
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.REJECTED and result.reason == "rejected by frank: too risky"
