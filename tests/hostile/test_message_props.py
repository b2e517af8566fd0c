"""No message of any shape can fail a workflow task (invariant 7), with and without payload encryption.

Random payload lists (any count; JSON of any shape; broken JSON, nulls, raw bytes, unknown encodings, forged protobuf,
ciphertexts no key opens) go through Temporal's raw gRPC API to every signal, update and query of a pending
AgentLifecycle and a pending ToolApproval, and as the start input of every workflow of the product. Afterwards no
history holds a failed workflow task, and a valid message still works. Real Temporal dev server, OpenBao and SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from clients.client import DecisionRefused
from contracts.identifiers import workflow_id
from contracts.maintenance_models import SweepInput
from contracts.messages import MessageRefused, one_message
from contracts.models import AgentState, ApprovalState
from contracts.pool import PoolInput, PoolSize, pool_workflow_id
from tests.hostile import raw
from tests.hostile.live import settled
from tests.stack import ENCRYPTED_STACK_KEY_ID, Stack, eventually
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGENT_APPROVER, TOOL_APPROVER = "alice", "bob"
LIFECYCLE = {
    "signal": ["approve", "reject", "update_skills", "health_changed", "destroy"],
    # `admission` takes no body: any body is refused by its validator, and none answers the agent's status.
    "update": ["decide", "admission"],
    "query": ["status", "policy"],
}
TOOL_APPROVAL = {"signal": ["approve", "reject"], "update": ["decide"], "query": ["status"]}
EXAMPLES = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _names_an_approver(items: Sequence[Payload]) -> bool:
    """A body that could really decide (it names an allowed approver): not hostile, so not sent here."""
    values = raw.plain_json(items) or []
    return any(isinstance(v, dict) and v.get("approver") in (AGENT_APPROVER, TOOL_APPROVER) for v in values)


def _would_destroy(items: Sequence[Payload]) -> bool:
    """A well-formed destroy ends a pending agent, legitimately: not what this property is about."""
    values = raw.plain_json(items)
    if values is None or len(values) > 1:
        return False
    body = values[0] if values else None
    return body is None or (
        isinstance(body, dict)
        and set(body) <= {"requested_by", "reason"}
        and all(isinstance(v, str) for v in body.values())
    )


async def _send_everywhere(client: Client, wf_id: str, handlers: dict[str, list[str]], sent: list[Any]) -> int:
    """Every hostile list to every handler; returns how many decision signals were sent."""
    decisions = 0
    for items in sent:
        for name in handlers["signal"]:
            if name == "destroy" and _would_destroy(items):
                continue
            await raw.signal(client, wf_id, name, items)
            decisions += name in ("approve", "reject")
        for name in handlers["update"]:
            # Refused by the validator: it never enters history, so it is not counted among the refused.
            expected = "success" if name == "admission" and not items else "failure"
            assert await raw.update(client, wf_id, name, items) == expected, f"{name}: a hostile body was accepted"
        for name in handlers["query"]:
            await raw.query(client, wf_id, name, items)
    return decisions


@EXAMPLES
@given(sent=st.lists(raw.payload_lists((ENCRYPTED_STACK_KEY_ID, "k-unknown")), min_size=1, max_size=3))
async def test_no_message_to_any_handler_fails_a_workflow_task(
    plain_or_encrypted_stack: Stack, sent: list[list[Payload]]
) -> None:
    assume(not any(_names_an_approver(items) for items in sent))
    stack = plain_or_encrypted_stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True, approvers=[AGENT_APPROVER]))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)
        lifecycle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        approval = await stack.start_approval(agent_id, approvers=[TOOL_APPROVER])

        await _send_everywhere(stack.temporal, lifecycle.id, LIFECYCLE, sent)
        decisions = await _send_everywhere(stack.temporal, approval.id, TOOL_APPROVAL, sent)

        status = await settled(lifecycle, stack, agent_id)
        assert status.state == AgentState.PENDING_APPROVAL and status.approved_by == ""
        # Every decision sent to the tool approval was refused and counted (the sentinel is the one more).
        marker = f"sentinel-{uuid.uuid4().hex[:8]}"
        await approval.signal("approve", {marker: 1})

        async def all_refused() -> int | None:
            refused = (await approval.query(ToolApprovalWorkflow.status)).refused
            return refused if refused == decisions + 1 else None

        await eventually(all_refused, timeout_s=20, what=f"{decisions + 1} refused decisions")

        # Valid messages still work.
        assert (await stack.client.reject(agent_id, approver=AGENT_APPROVER, reason="over")).state == (
            AgentState.REJECTED
        )
        decided = await stack.client.decide_approval(approval.id, approver=TOOL_APPROVER, approved=False)
        assert decided.state == ApprovalState.REJECTED
        assert (await stack.client.result(agent_id)).state == AgentState.REJECTED
        await approval.result()
    assert await raw.workflow_task_failures(lifecycle) == []
    assert await raw.workflow_task_failures(approval) == []


POOL_WHERE = ("vultr", "ap-southeast", "large")
POOL = {"update": ["claim", "resize"], "query": ["status"]}


@EXAMPLES
@given(sent=st.lists(raw.payload_lists((ENCRYPTED_STACK_KEY_ID, "k-unknown")), min_size=1, max_size=3))
async def test_no_message_to_a_warm_pool_fails_a_workflow_task(
    plain_or_encrypted_stack: Stack, sent: list[list[Payload]]
) -> None:
    stack = plain_or_encrypted_stack
    async with stack.workers():
        # An empty pool: no VM is made, so the handlers are all there is to it.
        await stack.client.set_pool(*POOL_WHERE, min=0, max=0)
        handle = stack.temporal.get_workflow_handle(pool_workflow_id(*POOL_WHERE))
        for items in sent:
            for name in POOL["update"]:
                if name == "resize" and _grows_pool(items):
                    continue  # a well-formed resize would make VMs on a provider this stack does not serve
                # Refused by its validator, or (a body that happens to be well formed) answered: never a task failure.
                assert await raw.update(stack.temporal, handle.id, name, items) in ("success", "failure")
            if raw.plain_json(items) not in ([], [None]):  # no body at all really deletes the pool
                assert await raw.update(stack.temporal, handle.id, "delete", items) == "failure"
            await raw.query(stack.temporal, handle.id, "status", items)
        status = await stack.client.pool_status(*POOL_WHERE)
        assert not status.deleting and status.claims == 0
        final = await stack.client.delete_pool(*POOL_WHERE)
        assert final.deleting
    assert await raw.workflow_task_failures(handle) == []


def _grows_pool(items: Sequence[Payload]) -> bool:
    values = raw.plain_json(items)
    try:
        return values is not None and one_message(values, PoolSize).min > 0
    except (MessageRefused, TypeError):
        return False


START_TYPES = ["AgentLifecycle", "ToolApproval", "KeyRotation", "OrphanSweep", "FleetHealth", "WarmPool"]


@EXAMPLES
@given(workflow_type=st.sampled_from(START_TYPES), items=raw.payload_lists((ENCRYPTED_STACK_KEY_ID, "k-unknown")))
async def test_no_start_input_fails_a_workflow_task(
    plain_or_encrypted_stack: Stack, workflow_type: str, items: list[Payload]
) -> None:
    if workflow_type == "OrphanSweep":
        # A valid sweep input would really sweep the OpenBao the whole test session shares: keep to invalid ones.
        values = raw.plain_json(items)
        try:
            valid = values is not None and not one_message(values, SweepInput).invalid()
        except MessageRefused:
            valid = False
        assume(not valid)
    if workflow_type == "WarmPool":
        # A valid pool input would start a pool that runs until deleted: keep to invalid ones.
        values = raw.plain_json(items)
        try:
            valid = values is not None and not one_message(values, PoolInput).invalid()
        except MessageRefused:
            valid = False
        assume(not valid)
    stack = plain_or_encrypted_stack
    wf_id = f"hostile-start-{uuid.uuid4().hex[:12]}"
    async with stack.workers():
        await raw.start(stack.temporal, wf_id, workflow_type, stack.task_queue, items)
        handle = stack.temporal.get_workflow_handle(wf_id)
        try:
            await asyncio.wait_for(handle.result(), timeout=60)
        except WorkflowFailureError as err:
            # Refused with our message naming the field, as a workflow failure: never a retried workflow task.
            assert isinstance(err.cause, ApplicationError), err.cause
            assert err.cause.type in ("InvalidSpec", "InvalidInput"), err.cause
            assert err.cause.non_retryable
        except TimeoutError:
            raise AssertionError(f"{workflow_type} did not close: {await raw.workflow_task_failures(handle)}") from None
        assert await raw.workflow_task_failures(handle) == []


# --- item 3: refusals are audited, shown until a valid message arrives, never logged with the body -------------------

MARK = "zq-body-value-7731"
WRONG_BODIES: list[tuple[str, list[object], str]] = [
    ("destroy", [{"requested_by": 5}], "requested_by: must be a string"),
    ("destroy", [{"requested_by": [MARK]}], "requested_by: must be a string"),
    ("approve", [MARK], "body: must be a JSON object"),
    ("approve", [[1, 2, MARK]], "body: must be a JSON object"),
    ("approve", [{"approver": 123, "reason": MARK}], "approver: must be a string"),
    ("reject", [{"approver": "alice", "reason": MARK}, {"x": 1}], "2 payloads were sent"),
    ("approve", [], "the body needs"),
    ("approve", [None], "the body needs"),
    ("approve", [{}], "the body needs"),
    ("approve", [{"approver": "   ", "reason": MARK}], "the body needs"),
    ("update_skills", [{"skills": MARK}], "skills: must be a list"),
    ("approve", [{"approvr": "alice"}], "unknown field 'approvr'; allowed: approver, reason"),
]


@pytest.mark.parametrize(("handler", "body", "why"), WRONG_BODIES)
async def test_a_refused_message_is_audited_shown_and_never_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture, handler: str, body: list[object], why: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True, approvers=[AGENT_APPROVER]))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await raw.signal(stack.temporal, handle.id, handler, [raw.json_payload(v) for v in body])

        async def refused() -> list[Any] | None:
            found = [e for e in stack.registry.events(agent_id=agent_id) if e.details.get("handler") == handler]
            return found or None

        [event] = await eventually(refused, timeout_s=20, what=f"the refused {handler} audited")
        assert event.action in ("message.refused", "agent.approval_refused") and why in event.reason
        assert MARK not in event.reason and MARK not in str(event.details)
        # The person who sent it sees it in the Web UI's current details (and in the status) ...
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert f"`{handler}`" in meta.current_details and why in meta.current_details
        assert MARK not in meta.current_details
        status = await stack.client.status(agent_id)
        assert why in status.last_error and status.state == AgentState.PENDING_APPROVAL
        # ... until a valid message arrives.
        await stack.client.reject(agent_id, approver=AGENT_APPROVER, reason="over")
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        assert "refused" not in meta.current_details
        await stack.client.result(agent_id)
    assert await raw.workflow_task_failures(handle) == []
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert not [line for line in logged if MARK in line], "a refused body reached the logs"


async def test_a_refused_update_answers_its_sender_and_never_enters_history(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True, approvers=[AGENT_APPROVER]))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        outcome = await raw.update(stack.temporal, handle.id, "decide", [raw.json_payload({"approver": 7})])
        assert outcome == "failure"
        with pytest.raises(DecisionRefused, match="not an allowed approver"):
            await stack.client.approve(agent_id, approver="mallory")
        await stack.client.reject(agent_id, approver=AGENT_APPROVER)
        await stack.client.result(agent_id)
    # The validator refused both before history: nothing to replay, so nothing audited (signals' refusals are).
    assert [e for e in stack.registry.events(agent_id=agent_id) if "refused" in e.action] == []
