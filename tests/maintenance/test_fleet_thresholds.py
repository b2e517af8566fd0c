"""Each agent degrades exactly at its own `unhealthy_threshold` and recovers at its first healthy check (issue 20 item
3), through the real FleetHealth workflow: real bridges made unreachable (SIGSTOP) and reachable again (SIGCONT)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from contracts.identifiers import workflow_id
from contracts.maintenance_models import FleetHealthInput, FleetHealthResult
from contracts.models import AgentState
from tests.maintenance.helpers import run_now
from tests.stack import Stack, eventually
from workflows.fleet_health import FleetHealthWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

THRESHOLDS = (1, 2, 3, 5)
# A stopped bridge accepts the connection (the kernel does) and never answers: the probe times out, so a short timeout
# only makes those rounds quick. Rounds that expect answers give a bridge on a loaded machine time to answer.
STOPPED_PROBE = FleetHealthInput(timeout_s=0.5)
ANSWERING_PROBE = FleetHealthInput(timeout_s=20)


async def settled(stack: Stack, agent_id: str) -> None:
    """Every signal the lifecycle received has been handled, and what it started (an audit) has finished."""
    handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))

    async def quiet() -> bool | None:
        raw = (await handle.describe()).raw_description
        if raw.pending_activities or raw.HasField("pending_workflow_task"):
            return None
        events = [e.event_type async for e in handle.fetch_history_events()]
        last_signal = max(
            (i for i, t in enumerate(events) if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED), default=-1
        )
        handled = any(t == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for t in events[last_signal + 1 :])
        return True if handled else None

    await eventually(quiet, timeout_s=20, what=f"agent {agent_id}'s lifecycle handling its signals")


async def states(stack: Stack, agents: dict[int, str]) -> dict[int, AgentState]:
    found = {}
    for threshold, agent_id in agents.items():
        await settled(stack, agent_id)
        found[threshold] = (await stack.client.status(agent_id)).state
    return found


async def test_each_agent_degrades_at_its_own_threshold_and_recovers_at_the_first_healthy_check(stack: Stack) -> None:
    async with stack.workers():
        agents = {t: await stack.client.create_agent(stack.spec(unhealthy_threshold=t)) for t in THRESHOLDS}
        for agent_id in agents.values():
            await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        first: FleetHealthResult = await run_now(stack, FleetHealthWorkflow.run, ANSWERING_PROBE, "health")
        assert (first.healthy, first.signalled) == (len(agents), 0)

        pids: dict[int, Any] = {t: stack.local.pid_of(a) for t, a in agents.items()}
        for pid in pids.values():
            os.killpg(pid, signal.SIGSTOP)
        try:
            for failed_checks in range(1, max(THRESHOLDS) + 2):
                await run_now(stack, FleetHealthWorkflow.run, STOPPED_PROBE, "health")
                expected = {t: AgentState.DEGRADED if failed_checks >= t else AgentState.RUNNING for t in THRESHOLDS}
                assert await states(stack, agents) == expected, f"after {failed_checks} failed checks"
        finally:
            for pid in pids.values():
                os.killpg(pid, signal.SIGCONT)

        recovered: FleetHealthResult = await run_now(stack, FleetHealthWorkflow.run, ANSWERING_PROBE, "health")
        assert recovered.healthy == len(agents)
        assert await states(stack, agents) == dict.fromkeys(THRESHOLDS, AgentState.RUNNING)
        for threshold, agent_id in agents.items():
            actions = [e.action for e in stack.registry.events(agent_id=agent_id)]
            assert actions.count("agent.degraded") == 1 and actions.count("agent.recovered") == 1, threshold
            await stack.client.destroy(agent_id)
            await stack.client.result(agent_id)
