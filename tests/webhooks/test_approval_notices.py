"""Approval notices reach a real local receiver: signed, deduplicated, with the Web UI link and the CLI command, and
never in the way of the approval or the lifecycle, whatever the receiver does (tests/webhooks/receiver.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

import devstack
from activities.webhooks import DEFAULT_UI_URL, WebhookSecrets
from clients.webhooks import Webhooks
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.identifiers import workflow_id
from contracts.models import AgentState, ApprovalState, ApprovalStatus, ToolApprovalInput
from contracts.workflow_names import TOOL_APPROVAL
from store.webhooks import WebhookStore
from tests.stack import Stack, eventually, make_stack
from tests.webhooks.receiver import Receiver, running_receiver
from tests.workflows.test_lifecycle import _payload_texts
from workers.replay import workflow_replayer

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def admin(stack: Stack) -> Webhooks:
    return Webhooks(WebhookStore(stack.registry.engine, stack.registry.roles), WebhookSecrets(stack.vault.settings))


def add_generic(stack: Stack, receiver: Receiver, path: str, *, account: str = "acme") -> str:
    added = admin(stack).add(account, receiver.url(path), "generic")
    receiver.secrets[path] = added.secret
    return added.secret


async def accepted(receiver: Receiver, path: str, types: list[str], timeout_s: float = 30) -> list[str]:
    """Wait until each of `types` was accepted at `path` (deliveries run concurrently: in any order)."""

    async def check() -> list[str] | None:
        got = receiver.types(path)
        return got if sorted(got) == sorted(types) else None

    return await eventually(check, timeout_s=timeout_s, what=f"{types} at {path}: got {receiver.types(path)}")


def by_type(receiver: Receiver, path: str) -> dict[str, dict[str, Any]]:
    return {r.body["type"]: r.body for r in receiver.at(path, accepted_only=True)}


async def start_tool_approval(stack: Stack, **fields: object) -> WorkflowHandle[object, ApprovalStatus]:
    agent_id = f"t-{uuid.uuid4().hex[:12]}"
    request = ToolApprovalInput(
        agent_id=agent_id,
        account_id="acme",
        request_id="r1",
        tool="email.send",
        approvers=["alice"],
        requested_by="agent-bridge",
        publish_search_attribute=False,
    )
    for name, value in fields.items():
        setattr(request, name, value)
    return await stack.temporal.start_workflow(
        TOOL_APPROVAL,
        request,
        id=approval_workflow_id(agent_id, "r1"),
        task_queue=stack.task_queue,
        result_type=ApprovalStatus,
    )


async def assert_replays(handle: WorkflowHandle[Any, Any]) -> None:
    """The run's history, notices and all, replays on the workflow code as the worker runs it (deterministic)."""
    await workflow_replayer(DataConverter.default).replay_workflow(await handle.fetch_history())


def actions(stack: Stack, agent_id: str) -> list[str]:
    return [e.action for e in stack.registry.events(agent_id=agent_id)]


async def test_a_tool_approval_announces_pending_and_decided_signed_with_link_and_command(
    stack: Stack, receiver: Receiver
) -> None:
    secret = add_generic(stack, receiver, "/generic")
    admin(stack).add("acme", receiver.url("/slack"), "slack")
    async with stack.workers():
        handle = await start_tool_approval(stack)
        await accepted(receiver, "/generic", ["approval.pending"])
        await accepted(receiver, "/slack", ["Approval needed"])
        await handle.signal("approve", {"approver": "alice", "reason": "expected mail"})
        status = await handle.result()
        await accepted(receiver, "/generic", ["approval.pending", "approval.decided"])
        await accepted(receiver, "/slack", ["Approval needed", "Approval decided"])
    assert status.state == ApprovalState.APPROVED

    pending, decided = [r for r in receiver.at("/generic") if r.status == 200]
    assert not pending.refused and not decided.refused  # signature and timestamp verified by the receiver
    # What the README's "Webhooks" shows, as received (`pytest -s` prints it).
    shown = {k: v for k, v in pending.headers.items() if k.startswith("X-Lobstack") or k == "Content-Type"}
    print("\n".join(f"{k}: {v}" for k, v in shown.items()), json.dumps(pending.body, indent=2), sep="\n")
    print(json.dumps(receiver.at("/slack")[0].body, indent=2))
    body = pending.body
    run_id = handle.result_run_id
    assert body["kind"] == "tool" and body["account"] == "acme" and body["workflow_id"] == handle.id
    assert body["ui_url"] == f"{DEFAULT_UI_URL}/namespaces/default/workflows/{handle.id}/{run_id}"
    assert body["cli"] == f'lobstack approvals approve {handle.id} --approver YOUR_NAME --reason "why"'
    assert body["approvers"] == ["alice"] and body["deadline"] and "email.send" in body["summary"]
    assert decided.body["decision"] == {"outcome": "approved", "by": "alice", "reason": "expected mail"}

    slack = [r.body for r in receiver.at("/slack")]
    assert [s["text"].split(":")[0] for s in slack] == ["Approval needed", "Approval decided"]
    for message in slack:
        assert set(message) == {"text", "blocks"}
        assert all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" for b in message["blocks"])
        assert f"/workflows/{handle.id}/{run_id}|Open in the Temporal Web UI>" in message["blocks"][1]["text"]["text"]
    assert slack[0]["blocks"][2]["text"]["text"] == f"```{body['cli']}```"

    # The signing secret never enters the workflow's history, raw or decoded.
    raw = (await handle.fetch_history()).to_json()
    decoded = "\n".join(_payload_texts(json.loads(raw)))
    assert handle.id in decoded
    assert secret not in raw and secret not in decoded
    assert "approval.notice_failed" not in actions(stack, body["agent_id"])
    await assert_replays(handle)


async def test_an_agent_approval_announces_pending_and_the_rejection(stack_any_db: Stack, receiver: Receiver) -> None:
    stack = stack_any_db
    add_generic(stack, receiver, "/hook")
    spec = stack.spec(require_approval=True, approvers=["alice"], approval_timeout_s=3600)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await accepted(receiver, "/hook", ["approval.pending"])
        await stack.client.reject(agent_id, approver="alice", reason="not this week")
        result = await stack.client.result(agent_id)
        await accepted(receiver, "/hook", ["approval.pending", "approval.decided"])
    assert result.state == AgentState.REJECTED
    pending, decided = [r.body for r in receiver.at("/hook", accepted_only=True)]
    assert (
        pending["kind"] == "agent"
        and pending["agent_id"] == agent_id
        and pending["workflow_id"] == workflow_id(agent_id)
    )
    assert pending["cli"] == f'lobstack agent approve {agent_id} --approver YOUR_NAME --reason "why"'
    assert f"/workflows/{workflow_id(agent_id)}/" in pending["ui_url"]
    assert decided["decision"] == {"outcome": "rejected", "by": "alice", "reason": "not this week"}
    assert all(not r.refused for r in receiver.at("/hook"))


async def test_a_reminder_at_half_the_deadline_then_the_expiry(stack: Stack, receiver: Receiver) -> None:
    add_generic(stack, receiver, "/hook")
    async with stack.workers():
        handle = await start_tool_approval(stack, timeout_s=6)
        status = await handle.result()
        await accepted(receiver, "/hook", ["approval.pending", "approval.reminder", "approval.expired"])
    assert status.state == ApprovalState.EXPIRED
    got = {r.body["type"]: r for r in receiver.at("/hook", accepted_only=True)}
    pending, reminder, expired = (got[f"approval.{t}"] for t in ("pending", "reminder", "expired"))
    # Not before half of the 6 s deadline, by the signed timestamps (whole seconds) against the workflow's start.
    started = (await handle.describe()).start_time.timestamp()
    sent = [int(r.headers["X-Lobstack-Timestamp"]) for r in (pending, reminder, expired)]
    assert sent[0] <= sent[1] <= sent[2] and sent[1] >= int(started + 3) and sent[2] >= int(started + 6)
    assert expired.body["decision"]["outcome"] == "expired"
    await assert_replays(handle)  # the reminder's timer included


async def test_a_receiver_failing_once_gets_the_same_notice_again_and_counts_it_once(
    stack: Stack, receiver: Receiver
) -> None:
    add_generic(stack, receiver, "/flaky")
    receiver.scripts["/flaky"] = [500, 200]
    async with stack.workers():
        handle = await start_tool_approval(stack)
        await accepted(receiver, "/flaky", ["approval.pending"])
        await handle.signal("reject", {"approver": "alice", "reason": "no"})
        await handle.result()
        await accepted(receiver, "/flaky", ["approval.pending", "approval.decided"])
    first, retry = receiver.at("/flaky")[:2]
    assert (first.status, retry.status) == (500, 200)
    assert first.delivery == retry.delivery and first.body == retry.body  # one logical notice, signed afresh
    assert receiver.types("/flaky") == ["approval.pending", "approval.decided"]


async def test_a_receiver_answering_404_never_stops_the_lifecycle_and_is_audited(
    stack: Stack, receiver: Receiver
) -> None:
    add_generic(stack, receiver, "/gone")
    receiver.scripts["/gone"] = [404]
    spec = stack.spec(require_approval=True, approvers=["alice"], approval_timeout_s=3600)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await stack.client.approve(agent_id, approver="alice", reason="go")
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await stack.client.destroy(agent_id)
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.DESTROYED
    # 404 is not retried: one request per notice, each failure in the audit trail.
    assert [r.status for r in receiver.at("/gone")] == [404, 404]
    failed = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "approval.notice_failed"]
    assert len(failed) == 2 and all("HTTP 404" in e.reason for e in failed), [e.reason for e in failed]
    await assert_replays(stack.temporal.get_workflow_handle(workflow_id(agent_id)))


async def test_a_receiver_that_is_down_never_holds_up_the_decision(
    temporal_time_skipping: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path
) -> None:
    """The decision is watched in real time; only `result()` skips time (the closing workflow's 30 s NOTICE_DRAIN)."""
    stack = make_stack(temporal_time_skipping.client, openbao, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        with running_receiver() as closed:
            down = closed.url("/down")
        admin(stack).add("acme", down, "slack")  # nothing listens there any more: connection refused, retried
        async with stack.workers():
            handle = await start_tool_approval(stack)
            await handle.signal("approve", {"approver": "alice", "reason": "ok"})

            async def decided() -> ApprovalStatus | None:
                status = await handle.query("status", result_type=ApprovalStatus)
                return status if status.state == ApprovalState.APPROVED else None

            await eventually(decided, timeout_s=10, what="the decision, while the notices retry")
            status = await handle.result()  # the closing workflow waits a bounded moment for them, then cancels them
        assert status.state == ApprovalState.APPROVED
        failed = [e for e in stack.registry.events(agent_id=status.agent_id) if e.action == "approval.notice_failed"]
        assert failed and all("workflow closed first" in e.reason for e in failed), [e.reason for e in failed]
        await assert_replays(handle)
    finally:
        stack.registry.close()


async def test_a_tool_approval_that_escalates_tells_the_escalation_group(stack: Stack, receiver: Receiver) -> None:
    add_generic(stack, receiver, "/hook")
    async with stack.workers():
        handle = await start_tool_approval(stack, timeout_s=2, escalation_approvers=["bob"], escalation_timeout_s=60)
        await accepted(receiver, "/hook", ["approval.pending", "approval.reminder", "approval.escalated"])
        await handle.signal("approve", {"approver": "bob", "reason": "covering for alice"})
        status = await handle.result()
        await accepted(
            receiver, "/hook", ["approval.pending", "approval.reminder", "approval.escalated", "approval.decided"]
        )
    assert status.state == ApprovalState.APPROVED
    got = by_type(receiver, "/hook")
    escalated = got["approval.escalated"]
    assert escalated["approvers"] == ["alice", "bob"] and escalated["deadline"] > got["approval.pending"]["deadline"]
    assert got["approval.decided"]["decision"]["by"] == "bob"
    await assert_replays(handle)


async def test_an_agent_approval_reminds_and_escalates_at_half_its_deadline(
    temporal_time_skipping: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path, receiver: Receiver
) -> None:
    stack = make_stack(temporal_time_skipping.client, openbao, f"sqlite:///{tmp_path / 'r.db'}", tmp_path)
    try:
        add_generic(stack, receiver, "/hook")
        spec = stack.spec(
            require_approval=True, approvers=["alice"], escalation_approvers=["bob"], approval_timeout_s=3600
        )
        async with stack.workers():
            agent_id = await stack.client.create_agent(spec)
            await accepted(receiver, "/hook", ["approval.pending"])
            await temporal_time_skipping.sleep(timedelta(minutes=29))
            assert receiver.types("/hook") == ["approval.pending"]  # not before half the deadline
            await temporal_time_skipping.sleep(timedelta(minutes=2))
            await accepted(receiver, "/hook", ["approval.pending", "approval.reminder", "approval.escalated"])
            await stack.client.reject(agent_id, approver="alice", reason="no")
            await stack.client.result(agent_id)
            await accepted(
                receiver, "/hook", ["approval.pending", "approval.reminder", "approval.escalated", "approval.decided"]
            )
        got = by_type(receiver, "/hook")
        assert got["approval.reminder"]["approvers"] == ["alice"] and got["approval.escalated"]["approvers"] == ["bob"]
    finally:
        stack.registry.close()
