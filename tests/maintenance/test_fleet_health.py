"""FleetHealth: one probe of the whole fleet; only the agent whose health changed gets a `health_changed` signal."""

from __future__ import annotations

import os
import signal

import pytest

from activities.cloud.local import pid_alive
from contracts.maintenance_models import FleetHealthInput, FleetHealthResult
from contracts.models import AgentState
from tests.maintenance.helpers import run_now, signals_named
from tests.stack import Stack, eventually
from workflows.fleet_health import FleetHealthWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_only_a_change_signals_and_only_the_affected_lifecycle(stack: Stack) -> None:
    async with stack.workers():
        agents = [await stack.client.create_agent(stack.spec()) for _ in range(3)]
        for agent_id in agents:
            await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)

        # Everyone healthy at first sight: nothing new for any lifecycle.
        first: FleetHealthResult = await run_now(stack, FleetHealthWorkflow.run, FleetHealthInput(), "health")
        assert (first.probed, first.healthy, first.unhealthy, first.signalled) == (3, 3, 0, 0)

        # The agent's "VM" dies without its lifecycle knowing (SIGKILL: no goodbye).
        victim = agents[1]
        pid = stack.local.pid_of(victim)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        await eventually(lambda: _gone(pid), what="the killed bridge")

        second: FleetHealthResult = await run_now(stack, FleetHealthWorkflow.run, FleetHealthInput(), "health")
        assert (second.probed, second.healthy, second.unhealthy, second.signalled) == (3, 2, 1, 1)
        counts = {agent_id: await signals_named(stack.temporal, agent_id, "health_changed") for agent_id in agents}
        assert counts == {agents[0]: 0, victim: 1, agents[2]: 0}
        row = stack.registry.get(victim)
        assert row is not None and row.health == "unreachable"
        assert stack.registry.health_all()[victim].consecutive_failures == 1
        others = [stack.registry.get(a) for a in (agents[0], agents[2])]
        assert {r.health if r else None for r in others} == {"healthy"}

        # No change since: nobody is signalled (the victim's count grows, still below the threshold of 3).
        third: FleetHealthResult = await run_now(stack, FleetHealthWorkflow.run, FleetHealthInput(), "health")
        assert (third.probed, third.unhealthy, third.signalled) == (3, 1, 0)
        assert [await signals_named(stack.temporal, a, "health_changed") for a in agents] == [0, 1, 0]
        assert stack.registry.health_all()[victim].consecutive_failures == 2

        for agent_id in agents:
            await stack.client.destroy(agent_id)
            await stack.client.result(agent_id)


async def _gone(pid: int) -> bool | None:
    return True if not pid_alive(pid) else None
