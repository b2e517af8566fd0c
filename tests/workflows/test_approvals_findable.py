"""On the dev server: agent and tool approvals waiting for a person are found by the one documented query, in the Web
UI's list (search attributes, static summary) and by `lobstack approvals list`, and their state follows the decision."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecution
from temporalio.testing import WorkflowEnvironment

from contracts.approval_search import HIDE_MAINTENANCE_FILTER, PENDING_APPROVALS_QUERY
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.identifiers import workflow_id
from contracts.models import AgentState, ToolApprovalInput
from contracts.workflow_names import TOOL_APPROVAL
from tests.clients.cli_run import arun, assert_ok
from tests.stack import Stack
from workflows.search_attributes import ACCOUNT, AGENT_ID, APPROVAL_DEADLINE, APPROVAL_KIND, APPROVAL_STATE

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _listed(
    env: WorkflowEnvironment, query: str, ready: Callable[[dict[str, WorkflowExecution]], bool]
) -> dict[str, WorkflowExecution]:
    """Visibility is eventually consistent: list again until `ready` holds (bounded)."""
    found: dict[str, WorkflowExecution] = {}
    for _ in range(200):
        found = {wf.id: wf async for wf in env.client.list_workflows(query)}
        if ready(found):
            return found
        await env.sleep(0.05)
    return found


async def test_agent_and_tool_approvals_are_found_by_the_documented_query(
    temporal_dev: WorkflowEnvironment, stack_any_db: Stack
) -> None:
    stack = stack_any_db
    spec = stack.spec(require_approval=True, approvers=["alice"], approval_timeout_s=3600)
    tool_agent = f"t-{uuid.uuid4().hex[:12]}"
    tool_id = approval_workflow_id(tool_agent, "r1")
    async with stack.workers():
        before = datetime.now(UTC)
        agent_id = await stack.client.create_agent(spec, requested_by="carol")
        await stack.temporal.start_workflow(
            TOOL_APPROVAL,
            ToolApprovalInput(
                agent_id=tool_agent, account_id="globex", request_id="r1", tool="email.send", approvers=["bob"]
            ),
            id=tool_id,
            task_queue=stack.task_queue,
        )
        agent_wf = workflow_id(agent_id)
        # The documented query as an approver pastes it, with the filter that hides maintenance runs.
        query = f"{PENDING_APPROVALS_QUERY} AND {HIDE_MAINTENANCE_FILTER}"
        found = await _listed(temporal_dev, query, lambda f: {agent_wf, tool_id} <= f.keys())
        assert {agent_wf, tool_id} <= found.keys()
        agent_attrs = found[agent_wf].typed_search_attributes
        assert agent_attrs.get(APPROVAL_KIND) == "agent" and agent_attrs.get(APPROVAL_STATE) == "pending"
        assert agent_attrs.get(ACCOUNT) == "acme" and agent_attrs.get(AGENT_ID) == agent_id
        deadline = agent_attrs.get(APPROVAL_DEADLINE)
        assert deadline is not None and before + timedelta(minutes=59) < deadline < before + timedelta(minutes=61)
        tool_attrs = found[tool_id].typed_search_attributes
        assert tool_attrs.get(APPROVAL_KIND) == "tool" and tool_attrs.get(ACCOUNT) == "globex"
        assert tool_attrs.get(AGENT_ID) == tool_agent and tool_attrs.get(APPROVAL_DEADLINE) is not None

        # The list's one line says what waits, for which agent, account, placement and requester.
        summary = await (await stack.temporal.get_workflow_handle(agent_wf).describe()).static_summary()
        assert summary == (
            f"Needs approval: agent helper ({agent_id}), account acme, local/eu-central/small, requested by carol"
        )

        # The client and the CLI use the same query and show both kinds.
        listed = {a.workflow_id: a for a in await stack.client.pending_approvals()}
        assert listed[agent_wf].kind == "agent" and listed[tool_id].kind == "tool"
        assert listed[agent_wf].deadline == deadline
        env = {"TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host}
        done = await arun("approvals", "list", env=env)
        assert_ok(done)
        lines = done.out.splitlines()
        assert any(
            line.startswith("agent pending") and f"lobstack agent approve {agent_id} --approver NAME" in line
            for line in lines
        ), done
        assert any(
            line.startswith("tool  pending") and f"lobstack approvals approve {tool_id} --approver NAME" in line
            for line in lines
        ), done

        await stack.client.approve(agent_id, approver="alice", reason="ok")
        await stack.client.decide_approval(tool_id, approver="bob", approved=False)
        decided = await _listed(
            temporal_dev,
            f"WorkflowId in ('{agent_wf}', '{tool_id}')",
            lambda f: (
                [wf.typed_search_attributes.get(APPROVAL_STATE) for wf in f.values()].count("pending") == 0
                and len(f) == 2
            ),
        )
        assert decided[agent_wf].typed_search_attributes.get(APPROVAL_STATE) == "approved"
        assert decided[tool_id].typed_search_attributes.get(APPROVAL_STATE) == "rejected"
        pending = await _listed(temporal_dev, PENDING_APPROVALS_QUERY, lambda f: not {agent_wf, tool_id} & f.keys())
        assert not {agent_wf, tool_id} & pending.keys()
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await stack.client.destroy(agent_id, requested_by="alice")
        await stack.client.result(agent_id)
