"""Issue 13 item 6: an approver finds, reads and answers agent and tool approvals in the bundled Temporal Web UI.

Debian's Chromium drives the UI (2.54.1) of a real Temporal dev server, with real workers, OpenBao and a registry on
SQLite and PostgreSQL. Each test pastes the documented query into the list, opens the waiting run, sends the `decide`
Update from "Send an Update" as someone who may not approve (the refusal stays in the dialog, the run keeps waiting),
then as an approver, and checks the outcome through the client. It counts the steps a person takes.

With LOBSTACK_UI_SCREENSHOTS=<dir> the same code writes the screenshots of docs/approvals.md
(`python -m tests.browser.screens`).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from playwright.async_api import Browser
from temporalio.client import Client, WorkflowHandle

import devstack
from contracts.approval_search import PENDING_APPROVALS_QUERY
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.identifiers import workflow_id
from contracts.models import AgentState, ApprovalState, ApprovalStatus, ToolApprovalInput
from tests.browser.approver import VIEWPORT, ApproverPage, ChromiumMissing, Decided, chromium
from tests.stack import Stack, eventually, make_stack, reap
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

SHOTS_ENV = "LOBSTACK_UI_SCREENSHOTS"
# From the list of pending approvals to a decision, as issue 13 asks (tests/browser/approver.py: what a step is).
MAX_STEPS = 6
# The clicks and pastes behind those steps in UI 2.54.1: pinned, so that a UI upgrade that changes the path shows.
DECISION_ACTIONS = 8
OUTSIDER = {"approver": "mallory", "reason": "looks fine to me", "approved": True}


@pytest.fixture(scope="module")
def temporal_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.TemporalDev]:
    """The dev server as `lobstack dev` starts it, with its Web UI and the approval search attributes."""
    server = devstack.start_temporal(tmp_path_factory.mktemp("temporal-ui"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    try:
        async with chromium() as launched:
            yield launched
    except ChromiumMissing as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture
async def ui_stack(
    temporal_ui: devstack.TemporalDev, openbao: devstack.OpenBaoDev, database_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    made = make_stack(await Client.connect(temporal_ui.address), openbao, database_url, tmp_path)
    yield made
    reap(made)


@pytest.fixture
async def approver(
    browser: Browser, temporal_ui: devstack.TemporalDev, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ApproverPage]:
    """A fresh tab (its own storage: no query box or columns remembered from another test)."""
    context = await browser.new_context(viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]})
    page = await context.new_page()
    page.set_default_timeout(30_000)
    shots = os.environ.get(SHOTS_ENV)
    name = request.node.name
    # One set of screenshots: the SQLite runs of the agent approval and of the tool approval.
    keep = "sqlite" in name and ("test_agent_approval" in name or ("test_tool" in name and "approve" in name))
    prefix = "tool-" if "test_tool" in name else ""
    yield ApproverPage(page, temporal_ui.ui_url, Path(shots) if shots and keep else None, prefix)
    await page.screenshot(path=str(tmp_path / "last-page.png"))  # where a failure left the page, for its report
    await context.close()


async def _pending(stack: Stack, wf_id: str) -> None:
    """Visibility is eventually consistent: the UI lists the run once the server's own list has it."""

    async def listed() -> bool | None:
        return any([wf.id == wf_id async for wf in stack.temporal.list_workflows(PENDING_APPROVALS_QUERY)]) or None

    await eventually(listed, timeout_s=30, what=f"{wf_id} listed by {PENDING_APPROVALS_QUERY}")


async def _summary(stack: Stack, wf_id: str) -> str:
    summary = await (await stack.temporal.get_workflow_handle(wf_id).describe()).static_summary()
    assert summary, f"{wf_id} has no static summary"
    return summary


async def _find_and_open(approver: ApproverPage, stack: Stack, wf_id: str) -> int:
    """The approver's path up to the decision; returns the step mark where the list of pending approvals shows."""
    await _pending(stack, wf_id)
    summary = await _summary(stack, wf_id)
    await approver.open_list()
    await approver.find(PENDING_APPROVALS_QUERY, wf_id)
    assert approver.steps.steps_since() == ["enter the query"]
    # The filtered list is bookmarkable (docs/approvals.md): the query is in the page's address.
    assert PENDING_APPROVALS_QUERY in unquote_plus(approver.page.url)
    listed = approver.steps.mark()
    await approver.shot("1-pending-list")
    await approver.open(wf_id, summary)
    await approver.shot("2-user-metadata")
    return listed


def _assert_refused(decided: Decided) -> None:
    """The dialog shows why, in our words: about the approver, never a stack trace or a worker's file path."""
    assert decided.refusal and "approver" in decided.refusal.lower(), decided
    assert not re.search(r'File "|\.py\b|Traceback', decided.refusal), decided.refusal


def _assert_counted(approver: ApproverPage, listed: int) -> None:
    """Steps from the list of pending approvals to the first Submit (a refused attempt costs a paste and a Submit
    more; its steps are the same ones)."""
    steps = approver.steps.steps_since(listed)
    actions = approver.steps.actions_since(listed)
    first_submit = actions.index("click Submit") + 1
    assert len(steps) <= MAX_STEPS, steps
    assert len(actions[:first_submit]) == DECISION_ACTIONS, actions


async def test_agent_approval_refused_in_the_dialog_then_approved(ui_stack: Stack, approver: ApproverPage) -> None:
    stack = ui_stack
    spec = stack.spec(require_approval=True, approvers=["alice"])
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec, requested_by="carol")
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        listed = await _find_and_open(approver, stack, workflow_id(agent_id))

        dialog = await approver.open_update_dialog()
        refused = await approver.submit(dialog, OUTSIDER, shot="3-update-dialog")
        _assert_refused(refused)
        await approver.shot("4-refused")
        assert (await stack.client.status(agent_id)).state == AgentState.PENDING_APPROVAL

        decided = await approver.retry(dialog, {"approver": "alice", "reason": "ticket OPS-7", "approved": True})
        assert decided.refusal is None
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        assert running.approved_by == "alice"
        await approver.see_state("approved")
        await approver.shot("5-approved")
        _assert_counted(approver, listed)

        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)


async def test_agent_rejected_from_the_dialog(ui_stack: Stack, approver: ApproverPage) -> None:
    stack = ui_stack
    spec = stack.spec(require_approval=True, approvers=["alice"])
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec, requested_by="carol")
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        listed = await _find_and_open(approver, stack, workflow_id(agent_id))

        dialog = await approver.open_update_dialog()
        refused = await approver.submit(dialog, {**OUTSIDER, "approved": False})
        _assert_refused(refused)
        assert (await stack.client.status(agent_id)).state == AgentState.PENDING_APPROVAL

        decided = await approver.retry(dialog, {"approver": "alice", "reason": "not this quarter", "approved": False})
        assert decided.refusal is None
        result = await stack.client.result(agent_id)
        assert result.state == AgentState.REJECTED
        assert stack.vms_of(agent_id) == 0
        _assert_counted(approver, listed)


async def _start_tool_approval(stack: Stack, agent_id: str) -> WorkflowHandle[ToolApprovalWorkflow, ApprovalStatus]:
    """As the gateway starts one when an agent's bridge asks to send an email (gateway/app.py)."""
    request_id = uuid.uuid4().hex[:12]
    return await stack.temporal.start_workflow(
        ToolApprovalWorkflow.run,
        ToolApprovalInput(
            agent_id=agent_id,
            account_id="acme",
            request_id=request_id,
            tool="email.send",
            arguments={"to": "board@example.com", "subject": "Q3 numbers"},
            requested_by=f"agent-{agent_id}",
            approvers=["alice"],
        ),
        id=approval_workflow_id(agent_id, request_id),
        task_queue=stack.task_queue,
        static_summary=(
            f"Needs approval: tool email.send (high risk) for agent {agent_id}, account acme, local/eu-central, "
            f"requested by agent-{agent_id}"
        ),
    )


@pytest.mark.parametrize("approved", [True, False], ids=["approve", "reject"])
async def test_tool_approval_from_the_dialog(ui_stack: Stack, approver: ApproverPage, approved: bool) -> None:
    stack = ui_stack
    agent_id = f"t-{uuid.uuid4().hex[:16]}"
    async with stack.workers():
        handle = await _start_tool_approval(stack, agent_id)
        listed = await _find_and_open(approver, stack, handle.id)

        dialog = await approver.open_update_dialog()
        refused = await approver.submit(dialog, {**OUTSIDER, "approved": approved})
        _assert_refused(refused)
        waiting = await stack.temporal.get_workflow_handle(handle.id).describe()
        assert waiting.status is not None and waiting.status.name == "RUNNING"

        decided = await approver.retry(dialog, {"approver": "alice", "reason": "expected mail", "approved": approved})
        assert decided.refusal is None
        result = await handle.result()
        assert result.state == (ApprovalState.APPROVED if approved else ApprovalState.REJECTED)
        await approver.see_state(result.state.value)
        # The outsider was refused by the update's validator: shown in the dialog, never in the history.
        assert result.decided_by == "alice" and result.refused == 0
        _assert_counted(approver, listed)
