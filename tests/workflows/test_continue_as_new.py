"""A lifecycle that continues as new carries its whole state: a degraded agent is still degraded in the next run.

These tests run on their own dev server, which suggests continue-as-new after a few dozen history events instead of
thousands, so a lifecycle crosses runs within a test, the way a long-lived agent does in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import devstack
from contracts.identifiers import workflow_id
from contracts.models import AgentState, HealthChange
from tests.stack import Stack, eventually, make_stack, reap

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Far below the server's default (4096): provisioning alone passes it, so the first run continues as new at once.
SUGGEST_CONTINUE_AS_NEW_AFTER = 40


@pytest.fixture(scope="module")
async def short_history_temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=devstack.temporal_binary(),
        dev_server_extra_args=[
            *devstack.dynamic_config_flags(),
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER}",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture
def short_history_stack(
    short_history_temporal: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path
) -> Iterator[Stack]:
    made = make_stack(short_history_temporal.client, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    yield made
    reap(made)


async def _run_id(handle: WorkflowHandle[object, object]) -> str:
    return (await handle.describe()).run_id or ""


async def _continued(stack: Stack, agent_id: str, handle: WorkflowHandle[object, object], run_id: str) -> str:
    """Grow the history with skill updates (they touch no health) until the lifecycle continues as new."""

    async def new_run() -> str | None:
        current = await _run_id(handle)
        if current != run_id:
            return current
        await stack.client.update_skills(agent_id, ["web.search"], requested_by="test")
        return None

    return await eventually(new_run, timeout_s=60, what="a continue-as-new")


async def test_a_degraded_agent_that_continues_as_new_is_still_degraded(short_history_stack: Stack) -> None:
    stack = short_history_stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(unhealthy_threshold=2))
        first_run = await _run_id(stack.temporal.get_workflow_handle(workflow_id(agent_id)))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        # A refused message is the agent's last error; the health changes below leave it as it is.
        await handle.signal("health_changed", {"healthy": "no", "status": "unreachable"})
        await stack.health_changed(agent_id, HealthChange(False, "unreachable", "timeout", consecutive_failures=1))
        await stack.health_changed(agent_id, HealthChange(False, "unreachable", "timeout", consecutive_failures=2))
        before = await stack.client.wait_for(agent_id, {AgentState.DEGRADED}, timeout_s=30)
        assert before.consecutive_failures == 2 and "health_changed" in before.last_error

        run_id = await _continued(stack, agent_id, handle, await _run_id(handle))
        assert run_id != first_run
        after = await stack.client.status(agent_id)
        assert (after.state, after.health, after.consecutive_failures, after.last_error) == (
            AgentState.DEGRADED,
            "unreachable",
            2,
            before.last_error,
        )
        assert (after.vm_id, after.address, after.running_at, after.created_at) == (
            before.vm_id,
            before.address,
            before.running_at,
            before.created_at,
        )

        # The next run counts on from the carried failures, and recovers as the first would have.
        await stack.health_changed(agent_id, HealthChange(False, "unreachable", "timeout"))

        async def counted_on() -> int | None:
            status = await stack.client.status(agent_id)
            return status.consecutive_failures if status.consecutive_failures != 2 else None

        assert await eventually(counted_on, what="the third failure") == 3
        await stack.health_changed(agent_id, HealthChange(True, "healthy"))
        recovered = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=30)
        assert (recovered.health, recovered.consecutive_failures) == ("healthy", 0)
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    assert stack.vms_of(agent_id) == 0
