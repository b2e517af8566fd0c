"""What a person reads of a failure is our message, never the worker's stack trace or file paths (issue 20 item 4).

The Web UI shows a failure's message and then its stack trace (the "Send an Update" dialog, event details), and the CLI
gets the same failure. Every failure a worker writes (a refused update, a failed activity, a failed workflow), with
and without payload encryption, carries the message and no stack at any level; the worker's log keeps the stack.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowFailureError

from contracts.identifiers import workflow_id
from contracts.models import AgentState
from tests.hostile import raw
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


def levels(failure: Failure) -> Iterator[Failure]:
    while True:
        yield failure
        if not failure.HasField("cause"):
            return
        failure = failure.cause


async def assert_message_only(client: Client, failure: Failure) -> str:
    """No stack trace at any level, also inside encoded attributes; returns the (decoded) top message."""
    decoded = await client.data_converter.decode_failure(failure)
    for level in levels(failure):
        assert level.stack_trace == "", level.stack_trace
        if level.HasField("encoded_attributes"):
            [attributes] = await client.data_converter.decode([level.encoded_attributes])
            assert not attributes.get("stack_trace"), attributes
    text = str(decoded)
    assert 'File "' not in text and ".py" not in text, text
    return text


async def test_refused_updates_and_failed_runs_show_our_message_only(
    plain_or_encrypted_stack: Stack, never_healthy_argv: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    stack = plain_or_encrypted_stack
    caplog.set_level(logging.WARNING)
    async with stack.workers(stack.local_with(never_healthy_argv)):
        agent_id = await stack.client.create_agent(
            stack.spec(require_approval=True, approvers=["alice"], health_timeout_s=2)
        )
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        # A refused update, as the Web UI's "Send an Update" dialog sends it: one JSON payload.
        outcome = await raw.update_outcome(stack.temporal, handle.id, "decide", [raw.json_payload({"approver": "x"})])
        assert outcome.HasField("failure")
        assert "not an allowed approver" in await assert_message_only(stack.temporal, outcome.failure)

        # A failed workflow (health never passes), with an activity failure inside it.
        await stack.client.approve(agent_id, approver="alice")
        with pytest.raises(WorkflowFailureError):
            await stack.client.result(agent_id)
    activity_failures, workflow_failures = [], []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            activity_failures.append(event.activity_task_failed_event_attributes.failure)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            workflow_failures.append(event.workflow_execution_failed_event_attributes.failure)
    assert activity_failures and workflow_failures
    for failure in [*activity_failures, *workflow_failures]:
        await assert_message_only(stack.temporal, failure)
    assert "failed and was cleaned up" in await assert_message_only(stack.temporal, workflow_failures[0])
    # The stack is still in the worker's log, for the operator.
    assert any(r.exc_info or r.exc_text for r in caplog.records if "activity" in r.getMessage().lower())
