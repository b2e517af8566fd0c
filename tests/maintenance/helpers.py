"""Shared helpers of the maintenance tests: run a maintenance workflow now, count a lifecycle's signals."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.identifiers import workflow_id
from contracts.models import AgentState, Transition
from tests.stack import Stack


async def run_now(stack: Stack, run: Any, arg: object, kind: str) -> Any:
    """Execute a maintenance workflow on the test's queue with a unique id, as the CLI does."""
    return await stack.temporal.execute_workflow(
        run, arg, id=f"test-{kind}-{uuid.uuid4().hex[:10]}", task_queue=stack.task_queue
    )


async def signals_named(client: Client, agent_id: str, name: str) -> int:
    """How many `name` signals the agent's lifecycle received, from its history (across continue-as-new runs too)."""
    history = await client.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == name
    )


def registered(agent_id: str, account_id: str = "acme", state: AgentState = AgentState.RUNNING) -> Transition:
    return Transition(
        event_key=f"test-{uuid.uuid4().hex}", agent_id=agent_id, account_id=account_id, state=state, action="test.seed"
    )
